int main(int argc, array(string) argv) {
    foreach (argv[1..], string arg) write(arg + "\n");
    return 0;
}
