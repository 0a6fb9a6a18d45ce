; Copies stdin to stdout.
        global  _start

        section .bss
buf:    resb    65536

        section .text
_start:
.read:
        xor     eax, eax        ; read
        xor     edi, edi        ; stdin
        lea     rsi, [rel buf]
        mov     edx, 65536
        syscall
        cmp     rax, -4         ; EINTR: try again
        je      .read
        test    rax, rax
        jz      .done           ; end of input
        js      .fail           ; error
        mov     r12, rax        ; bytes left to write
        lea     r13, [rel buf]  ; where they start
.write:
        mov     eax, 1          ; write
        mov     edi, 1          ; stdout
        mov     rsi, r13
        mov     rdx, r12
        syscall
        cmp     rax, -4
        je      .write
        test    rax, rax
        jle     .fail
        add     r13, rax
        sub     r12, rax
        jnz     .write
        jmp     .read
.done:
        xor     edi, edi
        jmp     .exit
.fail:
        mov     edi, 1
.exit:
        mov     eax, 60         ; exit
        syscall
