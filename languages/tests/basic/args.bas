n = peek("arguments")
for i = 1 to n
  print peek$("argument")
next i
