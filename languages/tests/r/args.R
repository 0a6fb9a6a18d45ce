args <- commandArgs(trailingOnly = TRUE)
for (arg in args) {
  cat(arg, "\n", sep = "")
}
