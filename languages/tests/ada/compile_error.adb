with Ada.Text_IO;

procedure Compile_Error is
   N : Integer := "not a number";
begin
   Ada.Text_IO.Put_Line (Integer'Image (N));
end Compile_Error;
