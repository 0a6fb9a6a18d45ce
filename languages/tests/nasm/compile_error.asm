; Does not assemble: an unknown instruction and an undefined label.
        global  _start

        section .text
_start:
        mov     eax, 60
        movx    edi, 3
        jmp     nowhere
        syscall
