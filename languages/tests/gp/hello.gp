print("Hello, World!");
quit
