\ next-arg takes the next command-line argument (length 0 when none is left).
: args ( -- )
  begin  next-arg dup
  while  type cr
  repeat 2drop ;
args bye
