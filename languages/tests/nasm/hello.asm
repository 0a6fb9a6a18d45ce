; Hello, World! for Linux x86-64: raw system calls, no libc.
        global  _start

        section .rodata
msg:    db      "Hello, World!", 10
len:    equ     $ - msg

        section .text
_start:
        mov     eax, 1          ; write
        mov     edi, 1          ; stdout
        lea     rsi, [rel msg]
        mov     edx, len
        syscall

        mov     eax, 60         ; exit
        xor     edi, edi
        syscall
