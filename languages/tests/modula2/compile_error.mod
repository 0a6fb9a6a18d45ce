MODULE Broken;
BEGIN
  Undeclared := 1
END Broken.
