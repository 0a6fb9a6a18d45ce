(dolist (arg argv)
  (princ (concat arg "\n")))
;; What is left in argv would be visited as files.
(setq argv nil)
