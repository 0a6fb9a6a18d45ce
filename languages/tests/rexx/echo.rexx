/* Copies stdin character by character: charin() gives "" only at its end. */
do forever
  c = charin()
  if c == '' then leave
  call charout , c
end
