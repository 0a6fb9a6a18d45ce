(print "Hello, World!")
