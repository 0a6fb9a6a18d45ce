(each arg (slice (dyn :args) 1) (print arg))
