;; In batch mode read-from-minibuffer reads a line of stdin; it signals at its end.
(condition-case nil
    (while t
      (princ (concat (read-from-minibuffer "") "\n")))
  (error nil))
