program exit3
  implicit none
  stop 3, quiet=.true.
end program exit3
