program args
  implicit none
  integer :: i, length
  character(len=:), allocatable :: arg

  do i = 1, command_argument_count()
    call get_command_argument(i, length=length)
    allocate (character(len=length) :: arg)
    call get_command_argument(i, arg)
    write (*, '(a)') arg
    deallocate (arg)
  end do
end program args
