int main() { write(Stdio.stdin->read()); return 0; }
