let () =
  let n : int = "three" in
  print_int n
