(for-each (lambda (arg) (display arg) (newline)) (cdr (command-line)))
