(each [_ a (ipairs arg)] (print a))
