program Echo;
var
  Line: string;
begin
  while not Eof(Input) do
  begin
    ReadLn(Line);
    WriteLn(Line);
  end;
end.
