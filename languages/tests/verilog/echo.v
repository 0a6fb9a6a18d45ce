// Copies stdin byte by byte: 32'h8000_0000 is Icarus Verilog's descriptor of stdin.
module main;
  integer c;
  initial begin
    c = $fgetc(32'h8000_0000);
    while (c != -1) begin
      $write("%c", c);
      c = $fgetc(32'h8000_0000);
    end
  end
endmodule
