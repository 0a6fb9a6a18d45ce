\\ readstr gives the lines of a file, without their newlines.
lines = readstr("/dev/stdin");
for (i = 1, #lines, print(lines[i]));
quit
