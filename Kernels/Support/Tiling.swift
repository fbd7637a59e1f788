/// Cache and register blocking constants, per instruction set (BLIS names).
///
/// The packed B micro-panel (KC x NR floats) is reused from L1 across the MR-row panels of A;
/// the packed A block (MC x KC) stays in L2 across the NR-column panels of B; a B block
/// (KC x NC) is shared by the workers from L3.
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
    /// Depth of a packed panel: KC x NR x 4 bytes of B (32 KiB at NR = 32) lives in L1 with room for A.
    package static let KC = 256
    /// Rows of A packed per L2 block: MC x KC x 4 bytes = 96 KiB at MC = 96.
    package static let MC = 96
    /// Columns of B packed per L3 block: KC x NC x 4 bytes = 4 MiB.
    package static let NC = 4096
}
