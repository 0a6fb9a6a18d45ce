void main () { print ("Hello, World!\n"); }
