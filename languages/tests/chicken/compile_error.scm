(print "unbalanced"
