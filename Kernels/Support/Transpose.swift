/// Square block transposes in registers, for packing transposed operands.
///
/// A strided scalar copy is what the compiler makes of `dst[p][j] = src[j][p]`, and on AVX-512 it
/// vectorises it into `vscatterdps`, which Zen 4 runs at well under one element per cycle (the
/// GEMM spent a fifth of its time there). Here the L x L block is loaded as L row vectors and
/// transposed by log2(L) rounds of unzipping row pairs (each lane index rotates right by one bit
/// per round), which lowers to two-source permutes (`vpermt2ps`): about 3 elements per cycle.
enum Transpose {
    @inline(__always)
    static func unzip(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
        let c = SIMD32<Float>(lowHalf: a, highHalf: b)
        return (c.evenHalf, c.oddHalf)
    }

    @inline(__always)
    static func unzip(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let c = SIMD16<Float>(lowHalf: a, highHalf: b)
        return (c.evenHalf, c.oddHalf)
    }

    @inline(__always)
    static func unzip(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> (SIMD4<Float>, SIMD4<Float>) {
        let c = SIMD8<Float>(lowHalf: a, highHalf: b)
        return (c.evenHalf, c.oddHalf)
    }

    /// The block transpose for this build's `VFloat` (vLanes x vLanes).
    @inline(__always)
    static func native(_ src: UnsafePointer<Float>, lds: Int, rows: Int = vLanes, _ store: (Int, VFloat) -> Void) {
        #if KERNELS_AVX512
        block16(src, lds: lds, rows: rows, store)
        #elseif KERNELS_FMA || arch(arm64)
        block8(src, lds: lds, rows: rows, store)
        #else
        block4(src, lds: lds, rows: rows, store)
        #endif
    }

    /// Rows 0..<16 of `src` (stride `lds`, rows at or past `rows` read as zero), transposed:
    /// `store(p, v)` receives column p of the block as a vector (v[j] = src[j * lds + p]).
    @inline(__always)
    static func block16(_ src: UnsafePointer<Float>, lds: Int, rows: Int = 16,
                        _ store: (Int, SIMD16<Float>) -> Void) {
        typealias V = SIMD16<Float>
        @inline(__always) func L(_ j: Int) -> V {
            j < rows ? UnsafeRawPointer(src + j * lds).loadUnaligned(as: V.self) : V()
        }
        var r0 = L(0), r1 = L(1), r2 = L(2), r3 = L(3), r4 = L(4), r5 = L(5), r6 = L(6), r7 = L(7)
        var r8 = L(8), r9 = L(9), r10 = L(10), r11 = L(11), r12 = L(12), r13 = L(13), r14 = L(14), r15 = L(15)
        for _ in 0 ..< 4 {
            let (n0, n8) = unzip(r0, r1), (n1, n9) = unzip(r2, r3)
            let (n2, n10) = unzip(r4, r5), (n3, n11) = unzip(r6, r7)
            let (n4, n12) = unzip(r8, r9), (n5, n13) = unzip(r10, r11)
            let (n6, n14) = unzip(r12, r13), (n7, n15) = unzip(r14, r15)
            r0 = n0; r1 = n1; r2 = n2; r3 = n3; r4 = n4; r5 = n5; r6 = n6; r7 = n7
            r8 = n8; r9 = n9; r10 = n10; r11 = n11; r12 = n12; r13 = n13; r14 = n14; r15 = n15
        }
        store(0, r0); store(1, r1); store(2, r2); store(3, r3); store(4, r4); store(5, r5); store(6, r6); store(7, r7)
        store(8, r8); store(9, r9); store(10, r10); store(11, r11); store(12, r12); store(13, r13); store(14, r14); store(15, r15)
    }

    /// The 8 x 8 analogue of `block16` (three rounds).
    @inline(__always)
    static func block8(_ src: UnsafePointer<Float>, lds: Int, rows: Int = 8,
                       _ store: (Int, SIMD8<Float>) -> Void) {
        typealias V = SIMD8<Float>
        @inline(__always) func L(_ j: Int) -> V {
            j < rows ? UnsafeRawPointer(src + j * lds).loadUnaligned(as: V.self) : V()
        }
        var r0 = L(0), r1 = L(1), r2 = L(2), r3 = L(3), r4 = L(4), r5 = L(5), r6 = L(6), r7 = L(7)
        for _ in 0 ..< 3 {
            let (n0, n4) = unzip(r0, r1), (n1, n5) = unzip(r2, r3)
            let (n2, n6) = unzip(r4, r5), (n3, n7) = unzip(r6, r7)
            r0 = n0; r1 = n1; r2 = n2; r3 = n3; r4 = n4; r5 = n5; r6 = n6; r7 = n7
        }
        store(0, r0); store(1, r1); store(2, r2); store(3, r3); store(4, r4); store(5, r5); store(6, r6); store(7, r7)
    }

    /// The 4 x 4 analogue of `block16` (two rounds).
    @inline(__always)
    static func block4(_ src: UnsafePointer<Float>, lds: Int, rows: Int = 4,
                       _ store: (Int, SIMD4<Float>) -> Void) {
        typealias V = SIMD4<Float>
        @inline(__always) func L(_ j: Int) -> V {
            j < rows ? UnsafeRawPointer(src + j * lds).loadUnaligned(as: V.self) : V()
        }
        var r0 = L(0), r1 = L(1), r2 = L(2), r3 = L(3)
        for _ in 0 ..< 2 {
            let (n0, n2) = unzip(r0, r1), (n1, n3) = unzip(r2, r3)
            r0 = n0; r1 = n1; r2 = n2; r3 = n3
        }
        store(0, r0); store(1, r1); store(2, r2); store(3, r3)
    }
}
