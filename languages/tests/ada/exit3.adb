with Ada.Command_Line;

procedure Exit3 is
begin
   Ada.Command_Line.Set_Exit_Status (3);
end Exit3;
