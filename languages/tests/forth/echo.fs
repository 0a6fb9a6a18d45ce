\ Copies stdin line by line.
4096 constant max-line
create line-buffer max-line allot
: echo ( -- )
  begin  line-buffer max-line stdin read-line throw
  while  line-buffer swap type cr
  repeat drop ;
echo bye
