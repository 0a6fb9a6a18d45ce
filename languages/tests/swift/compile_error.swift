let x: Int = "not a number"
