MODULE Exit3;
FROM libc IMPORT exit;
BEGIN
  exit (3)
END Exit3.
