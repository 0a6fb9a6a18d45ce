do i = 1 to arg()
  say arg(i)
end
