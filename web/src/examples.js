// A first program per language: one that asks for a name, so the terminal has
// something to do.
export const examples = {
  python: 'name = input("What is your name? ")\nprint(f"Hello, {name}!")\n',
  c: '#include <stdio.h>\n\nint main(void) {\n    char name[64];\n    printf("What is your name? ");\n    fflush(stdout);\n    if (scanf("%63s", name) == 1) printf("Hello, %s!\\n", name);\n    return 0;\n}\n',
  cpp: '#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n    std::cout << "What is your name? " << std::flush;\n    std::cin >> name;\n    std::cout << "Hello, " << name << "!\\n";\n}\n',
  javascript: 'const rl = require("readline").createInterface({ input: process.stdin, output: process.stdout });\nrl.question("What is your name? ", (name) => { console.log(`Hello, ${name}!`); rl.close(); });\n',
  bash: 'read -p "What is your name? " name\necho "Hello, $name!"\n',
  ruby: 'print "What is your name? "\nname = gets.chomp\nputs "Hello, #{name}!"\n',
  go: 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar name string\n\tfmt.Print("What is your name? ")\n\tfmt.Scan(&name)\n\tfmt.Printf("Hello, %s!\\n", name)\n}\n',
  rust: 'use std::io::{self, Write};\n\nfn main() {\n    print!("What is your name? ");\n    io::stdout().flush().unwrap();\n    let mut name = String::new();\n    io::stdin().read_line(&mut name).unwrap();\n    println!("Hello, {}!", name.trim());\n}\n',
  java: 'import java.util.Scanner;\n\npublic class Main {\n    public static void main(String[] args) {\n        System.out.print("What is your name? ");\n        System.out.flush();\n        String name = new Scanner(System.in).next();\n        System.out.println("Hello, " + name + "!");\n    }\n}\n',
};
