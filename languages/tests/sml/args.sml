(* Poly/ML lists its own options and the script before the program's arguments. *)
val args = case CommandLine.arguments () of
      "--script" :: _ :: rest => rest
    | all => all;
val () = List.app (fn arg => print (arg ^ "\n")) args;
