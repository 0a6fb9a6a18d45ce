import std.stdio;

void main(string[] args)
{
    foreach (arg; args[1 .. $])
        writeln(arg);
}
