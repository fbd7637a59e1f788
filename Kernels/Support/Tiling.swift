/// Cache and register blocking constants, per instruction set (BLIS names).
///
/// BLIS order for a wide vector register: the packed A micro-panel (MR x KC, the broadcast
/// operand) is reused from L1 across a run of B micro-panels (KC x NR, the vector operand) that
/// stays in L2; a B block (KC x NC) is shared by the workers from L3.
package enum Tiling {
    #if KERNELS_AVX512
    /// Rows of the micro-tile: 12 x 2 zmm accumulators + 2 B vectors + 1 broadcast = 27 of 32 registers.
    package static let MR = 12
    #elseif KERNELS_FMA || arch(arm64)
    /// 6 x 2 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
    package static let MR = 6
    #else
    /// 6 x 2 xmm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
    package static let MR = 6
    #endif
    /// Columns of the micro-tile: two native vectors.
    package static let NR = 2 * vLanes
    /// Depth of a packed panel: an A micro-panel (MR x KC x 4 bytes = 18 KiB at MR = 12) stays in L1
    /// while B micro-panels stream past it; deeper panels mean fewer read-modify-writes of C.
    package static let KC = 384
    /// Rows per parallel tile (a multiple of MR).
    package static let MC = 144
    /// Floats of packed B one tile streams from L2 (half of a 1 MiB L2: Zen 4 has 1 MiB, Ice Lake 1.25).
    package static let l2Floats = 128 * 1024
    /// Columns of B packed per L3 block: KC x NC x 4 bytes = 4 MiB.
    package static let NC = 4096
}
