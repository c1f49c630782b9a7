# The test guest of qmpcompat's end-to-end migrations: a 64 KiB firmware image
# that QEMU maps as the machine's BIOS (-bios), so that the guest runs no
# SeaBIOS, no option ROM and no boot loader. At the reset vector it switches to
# 32-bit flat protected mode, writes 'DRAQ' to its status word, then dirties one
# dword in every page of [hot_start, hot_end), counting passes in the word after
# the status: over and over, or (passes > 0) that many times, after which the
# CPU halts with interrupts off and takes no host CPU time. Its memory pattern
# is not its work: the harness loads it into guest RAM (-device loader) before
# the CPU starts.
#
# The harness patches the four parameters; qmpcompat/guest/image.py holds the
# bytes this file assembles to, and a test checks they agree:
#
#   as --32 -o guest.o guest.S && ld -m elf_i386 -Ttext=0xFFFF0000 --oformat binary -o guest.bin guest.o
        .set BASE, 0xFFFF0000              # where a 64 KiB BIOS is mapped (and at 0xF0000)
        .code32
        .globl _start
_start:
magic:      .ascii "QMPCOMPAT-GUEST!"
status:     .long 0x100000                 # patched: RAM address of the status word, then the pass counter
hot_start:  .long 0x100000                 # patched: the first page dirtied
hot_end:    .long 0x500000                 # patched: the end of the dirtied pages
passes:     .long 0                        # patched: passes before halting; 0: never halt
        .org 0x40
entry32:
        mov  $0x10, %ax
        mov  %ax, %ds
        mov  %ax, %es
        mov  %ax, %ss
        mov  (BASE + status - _start), %ebx
        movl $0, 4(%ebx)
        movl $0x51415244, (%ebx)           # 'DRAQ': running
2:      mov  (BASE + hot_start - _start), %edi
        mov  (BASE + hot_end - _start), %ecx
3:      incl 16(%edi)                      # past the status and the counter
        add  $4096, %edi
        cmp  %ecx, %edi
        jb   3b
        incl 4(%ebx)
        mov  (BASE + passes - _start), %eax
        test %eax, %eax
        jz   2b                            # 0: dirty the pages forever
        cmp  %eax, 4(%ebx)
        jb   2b
4:      hlt                                # interrupts are off: halted for good
        jmp  4b
        .p2align 3
gdt:    .quad 0
        .quad 0x00CF9A000000FFFF           # 0x08: flat 32-bit code
        .quad 0x00CF92000000FFFF           # 0x10: flat 32-bit data
gdtdesc:
        .word 23
        .long BASE + gdt - _start
        .org 0xFF00
        .code16
real:                                      # CS base is 0xFFFF0000 after reset
        cli
        lgdtl %cs:(gdtdesc - _start)
        mov  %cr0, %eax
        or   $1, %eax
        mov  %eax, %cr0
        ljmpl $0x08, $(BASE + entry32 - _start)
        .org 0xFFF0
reset:
        jmp  real
        .org 0x10000
