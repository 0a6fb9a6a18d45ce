while true
  line = fgets(stdin);
  if (! ischar(line))
    break;
  end
  fputs(stdout, line);
end
