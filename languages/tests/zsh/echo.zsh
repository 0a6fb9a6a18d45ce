# Copies stdin line by line; IFS= and -r keep spaces and backslashes.
while IFS= read -r line; do
  printf '%s\n' "$line"
done
