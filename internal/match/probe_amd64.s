//go:build amd64 && !purego

#include "go_asm.h"
#include "textflag.h"

// func find(x *Index, key *byte) (mask uint64, line *[8]uint64)
//
// The same arithmetic as Index.findGo, filterMask and Index.bucket: t is
// the key's first eight bytes big-endian, the bucket b = hi64(t*nb), the
// fingerprint the key's last two bytes. The line's fetch starts first;
// then the bucket's head (heads[2b], heads[2b+1], mostly in cache) must
// have the key's three filter bits, else the key is absent; if it has
// them, the fetch of the first records of the bucket starts (from the
// head's base) before the line is compared, so that a hit waits for main
// memory once rather than twice. The compares give two mask bits per
// 16-bit lane (VPMOVMSKB: one per byte). The header lanes' bits are
// cleared and bit 0 is set from the line's overflow flag (bit 40 of its
// first word). The caller guarantees that x is built and the key has
// x.size bytes; the bucket is below nb by construction. Prefetches never
// fault, even past the end of recs.
TEXT ·find(SB), NOSPLIT, $0-32
	MOVQ    x+0(FP), DI
	MOVQ    key+8(FP), SI
	MOVQ    Index_fpOff(DI), CX
	MOVWQZX (SI)(CX*1), BX
	MOVQ    (SI), AX
	BSWAPQ  AX
	MULQ    Index_nb(DI)
	MOVQ    DX, R9
	SHLQ    $6, DX
	MOVQ    Index_lines(DI), R8
	ADDQ    DX, R8
	PREFETCHT0 (R8)

	// The filter: bits u&63 and u>>6&63 of word 0, u>>12&31 of word 1.
	SHLQ    $4, R9
	ADDQ    Index_heads(DI), R9
	MOVL    8(SI), R11
	XORL    R12, R12
	BTSQ    R11, R12
	MOVL    R11, CX
	SHRL    $6, CX
	BTSQ    CX, R12
	SHRL    $12, R11
	ANDL    $31, R11
	XORL    R10, R10
	BTSQ    R11, R10
	MOVQ    8(R9), AX
	MOVQ    AX, DX
	NOTQ    DX
	ANDQ    R10, DX
	MOVQ    (R9), R13
	NOTQ    R13
	ANDQ    R12, R13
	ORQ     DX, R13
	JNE     filtered

	// The records from the bucket's base on: five lines hold sixteen
	// 20-byte records, more than most buckets have.
	SHRQ       $32, AX
	IMULQ      Index_stride(DI), AX
	ADDQ       Index_recs(DI), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 128(AX)
	PREFETCHT0 192(AX)
	PREFETCHT0 256(AX)

	MOVQ    BX, X0
	CMPB    ·useAVX2(SB), $0
	JEQ     sse2

	VPBROADCASTW X0, Y0
	VPCMPEQW     (R8), Y0, Y1
	VPCMPEQW     32(R8), Y0, Y2
	VPMOVMSKB    Y1, AX
	VPMOVMSKB    Y2, DX
	VZEROUPPER
	SHLQ         $32, DX
	ORQ          DX, AX

done:
	ANDQ $~0x3f, AX
	MOVQ (R8), DX
	SHRQ $40, DX
	ANDQ $1, DX
	ORQ  DX, AX
	MOVQ AX, mask+16(FP)
	MOVQ R8, line+24(FP)
	RET

filtered:
	MOVQ $0, mask+16(FP)
	MOVQ $0, line+24(FP)
	RET

sse2:
	PUNPCKLWL X0, X0
	PSHUFL    $0, X0, X0
	MOVOU     (R8), X1
	MOVOU     16(R8), X2
	MOVOU     32(R8), X3
	MOVOU     48(R8), X4
	PCMPEQW   X0, X1
	PCMPEQW   X0, X2
	PCMPEQW   X0, X3
	PCMPEQW   X0, X4
	PMOVMSKB  X1, AX
	PMOVMSKB  X2, DX
	SHLQ      $16, DX
	ORQ       DX, AX
	PMOVMSKB  X3, DX
	SHLQ      $32, DX
	ORQ       DX, AX
	PMOVMSKB  X4, DX
	SHLQ      $48, DX
	ORQ       DX, AX
	JMP       done

// func prefetchHead(x *Index, key *byte) (bucket uint64)
TEXT ·prefetchHead(SB), NOSPLIT, $0-24
	MOVQ       x+0(FP), DI
	MOVQ       key+8(FP), SI
	MOVQ       (SI), AX
	BSWAPQ     AX
	MULQ       Index_nb(DI)
	MOVQ       DX, bucket+16(FP)
	SHLQ       $4, DX
	ADDQ       Index_heads(DI), DX
	PREFETCHT0 (DX)
	RET

// func prefetchLine(x *Index, b uint64, key *byte) bool
//
// The filter test of find, then find's prefetches of the line and records.
TEXT ·prefetchLine(SB), NOSPLIT, $0-25
	MOVQ    x+0(FP), DI
	MOVQ    b+8(FP), R9
	MOVQ    key+16(FP), SI
	MOVQ    R9, R8
	SHLQ    $6, R8
	ADDQ    Index_lines(DI), R8
	SHLQ    $4, R9
	ADDQ    Index_heads(DI), R9
	MOVL    8(SI), R11
	XORL    R12, R12
	BTSQ    R11, R12
	MOVL    R11, CX
	SHRL    $6, CX
	BTSQ    CX, R12
	SHRL    $12, R11
	ANDL    $31, R11
	XORL    R10, R10
	BTSQ    R11, R10
	MOVQ    8(R9), AX
	MOVQ    AX, DX
	NOTQ    DX
	ANDQ    R10, DX
	MOVQ    (R9), R13
	NOTQ    R13
	ANDQ    R12, R13
	ORQ     DX, R13
	JNE     out

	PREFETCHT0 (R8)
	SHRQ       $32, AX
	IMULQ      Index_stride(DI), AX
	ADDQ       Index_recs(DI), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 128(AX)
	PREFETCHT0 192(AX)
	PREFETCHT0 256(AX)
	MOVB       $1, ret+24(FP)
	RET

out:
	MOVB $0, ret+24(FP)
	RET
