;; (main-args) is newlisp, its options, the file, then the arguments.
(dolist (arg (rest (member (main-args 2) (main-args))))
  (println arg))
(exit)
