MODULE Echo;
(* Copies stdin to stdout through the C library's read and write. *)
FROM libc IMPORT read, write;
FROM SYSTEM IMPORT ADR;
VAR
  buffer: ARRAY [0..4095] OF CHAR;
  n: INTEGER;
BEGIN
  LOOP
    n := read (0, ADR (buffer), SIZE (buffer));
    IF n <= 0 THEN EXIT END;
    n := write (1, ADR (buffer), n)
  END
END Echo.
