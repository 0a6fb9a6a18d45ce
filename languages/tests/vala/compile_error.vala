void main () { int x = "not a number"; }
