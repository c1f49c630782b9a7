# The test guest of qmpcompat's end-to-end migrations: a multiboot kernel
# (a.out kludge: no ELF, no boot loader, no disk) that QEMU's own -kernel
# loader starts in 32-bit flat protected mode, with interrupts off.
#
# It fills guest RAM from fill_start to fill_end with a Weyl sequence
# started at `seed` (the harness writes a new seed into every image), puts a
# 16-byte marker at fill_start, sets `status` to 'DRAQ', then dirties one
# dword in every page of [hot_start, hot_end) over and over, counting passes
# in `beat`.  The harness patches the five parameters; qmpcompat/guest/image.py
# holds the bytes this file assembles to, and a test checks they agree:
#
#   as --32 -o guest.o guest.S && ld -m elf_i386 -Ttext=0x100000 --oformat binary -o guest.bin guest.o
        .code32
        .set LOAD, 0x100000
        .globl _start
_start:
header:
        .long 0x1BADB002                   # multiboot magic
        .long 0x00010000                   # flags: the address fields below are valid
        .long -(0x1BADB002 + 0x00010000)   # checksum
        .long LOAD + (header - _start)     # header_addr
        .long LOAD                         # load_addr
        .long 0                            # load_end_addr: the whole file
        .long 0                            # bss_end_addr: none
        .long LOAD + (entry - _start)      # entry_addr
seed:       .long 0x12345678               # patched: where the pattern starts (never 0)
fill_start: .long 0x200000                 # patched
fill_end:   .long 0x4000000                # patched
hot_start:  .long 0x200000                 # patched
hot_end:    .long 0x600000                 # patched
status:     .long 0                        # 0x51415244 ('DRAQ') once the pattern is written
beat:       .long 0                        # dirtying passes since then
marker:     .ascii "QMPCOMPAT-MARK!!"
entry:
        cli
        mov  (LOAD + seed - _start), %eax
        mov  (LOAD + fill_start - _start), %edi
        mov  (LOAD + fill_end - _start), %ecx
1:      add  $0x9E3779B9, %eax             # a Weyl sequence: cheap, never repeats within 16 GiB
        mov  %eax, (%edi)
        add  $4, %edi
        cmp  %ecx, %edi
        jb   1b
        mov  (LOAD + fill_start - _start), %edi   # the marker
        mov  $(LOAD + marker - _start), %esi
        mov  $4, %ecx
        rep movsl
        movl $0x51415244, (LOAD + status - _start)
2:      mov  (LOAD + hot_start - _start), %edi
        mov  (LOAD + hot_end - _start), %ecx
3:      incl 16(%edi)                      # after the marker, never on it
        add  $4096, %edi
        cmp  %ecx, %edi
        jb   3b
        incl (LOAD + beat - _start)
        jmp  2b
