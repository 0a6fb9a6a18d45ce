(use-modules (ice-9 textual-ports))

(display (get-string-all (current-input-port)))
