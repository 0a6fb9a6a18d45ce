with Ada.Command_Line; use Ada.Command_Line;
with Ada.Text_IO;      use Ada.Text_IO;

procedure Args is
begin
   for I in 1 .. Argument_Count loop
      Put_Line (Argument (I));
   end loop;
end Args;
