MODULE PrintArgs;
FROM Args IMPORT Narg, GetArg;
FROM StrIO IMPORT WriteString, WriteLn;
VAR
  i: CARDINAL;
  arg: ARRAY [0..255] OF CHAR;
BEGIN
  FOR i := 1 TO Narg () - 1 DO
    IF GetArg (arg, i) THEN WriteString (arg); WriteLn END
  END
END PrintArgs.
