program compile_error
  implicit none
  integer :: n
  n = 'not a number'
  print *, n
end program compile_error
