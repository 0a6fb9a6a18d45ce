module main;
  initial $display("no semicolon")
endmodule
