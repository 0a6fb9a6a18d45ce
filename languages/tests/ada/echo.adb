with Ada.Streams;              use Ada.Streams;
with Ada.Text_IO;              use Ada.Text_IO;
with Ada.Text_IO.Text_Streams; use Ada.Text_IO.Text_Streams;

--  Copies stdin byte for byte (a Get_Line loop would drop a final empty line).
procedure Echo is
   Input  : constant Stream_Access := Stream (Standard_Input);
   Output : constant Stream_Access := Stream (Standard_Output);
   Buffer : Stream_Element_Array (1 .. 4096);
   Last   : Stream_Element_Offset;
begin
   loop
      Read (Input.all, Buffer, Last);
      exit when Last < Buffer'First;
      Write (Output.all, Buffer (1 .. Last));
   end loop;
end Echo;
