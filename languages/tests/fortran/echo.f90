program echo
  implicit none
  character(len=:), allocatable :: line
  character(len=4096) :: buffer
  integer :: ios, size_read

  do
    line = ''
    do
      read (*, '(a)', advance='no', iostat=ios, size=size_read) buffer
      line = line // buffer(1:size_read)
      if (ios /= 0) exit
    end do
    if (is_iostat_end(ios)) exit
    write (*, '(a)') line
  end do
end program echo
