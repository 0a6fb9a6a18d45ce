fun copy () =
  case TextIO.inputLine TextIO.stdIn of
      NONE => ()
    | SOME line => (print line; copy ());
val () = copy ();
