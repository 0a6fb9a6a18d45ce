rem Copies stdin line by line; an empty prompt keeps line input from printing "?".
while (not eof(0))
  line input "" a$
  print a$
wend
