-- Print stdin exactly: no column or row separator after the single value.
.separator "" ""
SELECT CAST(readfile('/dev/stdin') AS TEXT);
