program Exit3;
begin
  Halt(3);
end.
