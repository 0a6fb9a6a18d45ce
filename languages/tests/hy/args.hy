(import sys)
(for [arg (cut sys.argv 1 None)]
  (print arg))
