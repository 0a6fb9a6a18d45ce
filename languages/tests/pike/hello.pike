int main() { write("Hello, World!\n"); return 0; }
