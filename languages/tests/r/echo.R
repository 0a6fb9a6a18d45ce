input <- file("stdin")
lines <- readLines(input)
close(input)
writeLines(lines)
