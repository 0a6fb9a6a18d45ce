val () = print "Hello, World!\n";
