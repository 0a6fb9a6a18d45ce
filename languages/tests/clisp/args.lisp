(dolist (arg ext:*args*) (write-line arg))
