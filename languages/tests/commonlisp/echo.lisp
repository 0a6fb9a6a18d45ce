(loop for (line missing-newline-p)
        = (multiple-value-list (read-line *standard-input* nil nil))
      while line
      do (write-string line)
         (unless missing-newline-p
           (terpri)))
