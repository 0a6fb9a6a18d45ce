; Prints each command-line argument on its own line.
        global  _start

        section .rodata
newline: db     10

        section .text
_start:
        mov     rbx, [rsp]          ; argc
        lea     r12, [rsp + 16]     ; &argv[1]
        dec     rbx                 ; skip argv[0]
.next:
        test    rbx, rbx
        jz      .exit
        mov     rsi, [r12]          ; the argument
        xor     edx, edx            ; its length
.len:
        cmp     byte [rsi + rdx], 0
        je      .print
        inc     rdx
        jmp     .len
.print:
        mov     eax, 1              ; write(1, arg, len)
        mov     edi, 1
        syscall
        mov     eax, 1              ; write(1, "\n", 1)
        mov     edi, 1
        lea     rsi, [rel newline]
        mov     edx, 1
        syscall
        add     r12, 8
        dec     rbx
        jmp     .next
.exit:
        mov     eax, 60             ; exit(0)
        xor     edi, edi
        syscall
