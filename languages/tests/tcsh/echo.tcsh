# csh cannot tell an empty line from the end of its input ($<), so cat copies it.
cat
