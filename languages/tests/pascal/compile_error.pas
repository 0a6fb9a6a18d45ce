program CompileError;
var
  N: Integer;
begin
  N := 'not a number';
  WriteLn(N)
end.
