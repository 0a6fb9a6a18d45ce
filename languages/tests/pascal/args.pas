program Args;
var
  I: Integer;
begin
  for I := 1 to ParamCount do
    WriteLn(ParamStr(I));
end.
