using System;

class Program
{
    static void Main()
    {
        using (var input = Console.OpenStandardInput())
        using (var output = Console.OpenStandardOutput())
        {
            input.CopyTo(output);
        }
    }
}
