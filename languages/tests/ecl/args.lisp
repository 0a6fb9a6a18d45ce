(dolist (arg (cddr (member "--shell" (ext:command-args) :test (function string=)))) (write-line arg))
