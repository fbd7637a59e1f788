/// Decode-time matrix-vector product reading quantized weight rows directly.
///
/// y[n] = Σ_k W[n, k]·x[k], W stored row-major as N rows of K values in GGUF blocks (the
/// layout of a GGUF tensor with ne0 = K, ne1 = N). Blocks are dequantized in registers and
/// never written to memory, so the kernel is bound by the bandwidth of reading W.
///
/// Register dequantization without widening conversions: a block's quants are loaded as 32-bit
/// lanes and each byte (Q8_0) or nibble (Q4_1) position is isolated with a shift and a mask; OR-ing
/// the exponent of 2^23 turns the small integer into the float 2^23 + q exactly, and one
/// subtraction leaves q. Lane j then holds element 4j + i of the block, so x is permuted once per
/// call to the same order (a dot product does not care about the order of its terms).
public enum QuantizedGEMV {
    /// Supported weight types.
    public static func supports(_ type: GGMLType) -> Bool { type == .q8_0 || type == .q4_1 }

    /// y[n] = Σ_k W[n, k]·x[k] for n < rows (overwrites y).
    ///
    /// Shapes: `w` is rows·`type.rowBytes(count: columns)` bytes; `x` is (columns) floats;
    /// `y` is (rows). `columns` is a multiple of 32 (checked). Types: Q8_0 (x = q·d) and
    /// Q4_1 (x = q·d + m, computed as d·Σ q·x + m·Σ x per block, Σ x precomputed once per call).
    /// Contract: overwrites `y`; parallel over contiguous row ranges; bitwise identical for any
    /// `workers`. Accumulation is per row in Float (per block Σ q·x, then scaled by d); the error
    /// bound is that of a dot product of length K over the dequantized weights.
    /// Scratch: columns + columns/32 floats. Cost: 2·rows·columns FLOPs; reads rows·rowBytes + 4·columns bytes.
    public static func gemv(_ type: GGMLType, w: UnsafeRawPointer, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, workers: Int? = nil) {
        precondition(supports(type), "QuantizedGEMV: \(type.name) is not supported (Q8_0, Q4_1)")
        precondition(rows >= 0 && columns >= 0 && columns % 32 == 0,
                     "QuantizedGEMV: columns \(columns) must be a multiple of 32")
        let K = columns, blocks = K / 32
        let rowBytes = type.rowBytes(count: K)!
        let useful = max(1, rows * rowBytes / 65536)
        Workspace.withScratch(floats: K + blocks + 16) { scratch in
            let xp = scratch, xsum = scratch + K
            permute(type, x, into: xp, sums: xsum, blocks: blocks)
            switch type {
            case .q8_0:
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    for n in Parallel.range(ith, of: nth, count: rows) { y[n] = dotQ8_0(w + n * rowBytes, xp, blocks) }
                }
            case .q4_1:
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    for n in Parallel.range(ith, of: nth, count: rows) { y[n] = dotQ4_1(w + n * rowBytes, xp, xsum, blocks) }
                }
            default:
                preconditionFailure("unreachable")
            }
        }
    }

    /// x in the lane order the dot kernels extract quants in, plus per-block sums of x (Q4_1).
    ///   Q8_0, block pair (2p, 2p+1): xp[64p + 16i + L] = x[32(2p + L/8) + 4(L%8) + i], byte i < 4, lane L < 16;
    ///         odd last block b:      xp[32b + 8i + j]   = x[32b + 4j + i].
    ///   Q4_1, block quad (AVX-512):   xp[128q + 16n + L] = x[32(4q + L/4) + 4(L%4) + n/2 + 16(n%2)], nibble n < 8, L < 16;
    ///         then block pairs:      xp[64p + 8n + L]   = x[32(2p + L/4) + 4(L%4) + n/2 + 16(n%2)], nibble n < 8, L < 8;
    ///         odd last block b:      xp[32b + 4n + j]   = x[32b + 4j + n/2 + 16(n%2)].
    static func permute(_ type: GGMLType, _ x: UnsafePointer<Float>, into xp: UnsafeMutablePointer<Float>,
                        sums: UnsafeMutablePointer<Float>, blocks: Int) {
        let pairs = blocks / 2
        for b in 0 ..< blocks {
            var s: Float = 0
            for j in 0 ..< 32 { s += x[32 * b + j] }
            sums[b] = s
        }
        if type == .q8_0 {
            for p in 0 ..< pairs {
                for i in 0 ..< 4 { for L in 0 ..< 16 { xp[64 * p + 16 * i + L] = x[32 * (2 * p + L / 8) + 4 * (L % 8) + i] } }
            }
            if blocks % 2 == 1 {
                let b = blocks - 1
                for i in 0 ..< 4 { for j in 0 ..< 8 { xp[32 * b + 8 * i + j] = x[32 * b + 4 * j + i] } }
            }
        } else {
            let quads = q4_1Quads ? blocks / 4 : 0
            for q in 0 ..< quads {
                for n in 0 ..< 8 {
                    for L in 0 ..< 16 { xp[128 * q + 16 * n + L] = x[32 * (4 * q + L / 4) + 4 * (L % 4) + n / 2 + 16 * (n % 2)] }
                }
            }
            for p in 2 * quads ..< pairs {
                for n in 0 ..< 8 {
                    for L in 0 ..< 8 { xp[64 * p + 8 * n + L] = x[32 * (2 * p + L / 4) + 4 * (L % 4) + n / 2 + 16 * (n % 2)] }
                }
            }
            if blocks % 2 == 1 {
                let b = blocks - 1
                for n in 0 ..< 8 { for j in 0 ..< 4 { xp[32 * b + 4 * n + j] = x[32 * b + 4 * j + n / 2 + 16 * (n % 2)] } }
            }
        }
    }

    /// fp16 block scale -> Float through the hardware conversion where the platform has one
    /// (F16C `vcvtph2ps` on x86 builds for a CPU with it); exact for every finite value.
    @inline(__always) static func scale(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        #if (arch(x86_64) && !os(macOS)) || arch(arm64)
        return Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        #else
        return Dequantize.half(p, offset)
        #endif
    }

    @inline(__always) static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    /// Signed byte at bit `shift` of every lane, as Float: (byte ^ 0x80) + 2^23 exactly, minus 2^23 + 128.
    @inline(__always) static func int8Lanes(_ w: SIMD16<UInt32>, _ shift: UInt32) -> SIMD16<Float> {
        let bits = ((w &>> shift) & 0xFF) ^ 0x4B00_0080
        return unsafeBitCast(bits, to: SIMD16<Float>.self) - 8_388_736
    }
    @inline(__always) static func int8Lanes(_ w: SIMD8<UInt32>, _ shift: UInt32) -> SIMD8<Float> {
        let bits = ((w &>> shift) & 0xFF) ^ 0x4B00_0080
        return unsafeBitCast(bits, to: SIMD8<Float>.self) - 8_388_736
    }
    /// Nibble at bit `shift` of every lane, as Float (0...15).
    @inline(__always) static func nibbleLanes(_ w: SIMD8<UInt32>, _ shift: UInt32) -> SIMD8<Float> {
        let bits = ((w &>> shift) & 0xF) | 0x4B00_0000
        return unsafeBitCast(bits, to: SIMD8<Float>.self) - 8_388_608
    }
    @inline(__always) static func nibbleLanes(_ w: SIMD4<UInt32>, _ shift: UInt32) -> SIMD4<Float> {
        let bits = ((w &>> shift) & 0xF) | 0x4B00_0000
        return unsafeBitCast(bits, to: SIMD4<Float>.self) - 8_388_608
    }

    /// Σ_b d_b · Σ_j q_bj · x_bj over one Q8_0 row (two blocks per 16-lane step).
    @inline(__always)
    static func dotQ8_0(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var pair = 0
        while 2 * pair + 1 < blocks {
            let p = row + 68 * pair, x = xp + 64 * pair
            // Block 2p's quants are bytes 2..<34, block 2p+1's are 36..<68: one 8-lane half each.
            let w = SIMD16(lowHalf: p.advanced(by: 2).loadUnaligned(as: SIMD8<UInt32>.self),
                           highHalf: p.advanced(by: 36).loadUnaligned(as: SIMD8<UInt32>.self))
            var s0 = int8Lanes(w, 0) * load16(x), s1 = int8Lanes(w, 8) * load16(x + 16)
            fmadd(&s0, int8Lanes(w, 16), load16(x + 32))
            fmadd(&s1, int8Lanes(w, 24), load16(x + 48))
            let d = SIMD16(lowHalf: SIMD8<Float>(repeating: scale(p, 0)), highHalf: SIMD8<Float>(repeating: scale(p, 34)))
            if pair & 1 == 0 { fmadd(&acc0, d, s0 + s1) } else { fmadd(&acc1, d, s0 + s1) }
            pair += 1
        }
        var total = treeSum(acc0 + acc1)
        if blocks % 2 == 1 {
            let b = blocks - 1
            let p = row + 34 * b, x = xp + 32 * b
            let w = p.advanced(by: 2).loadUnaligned(as: SIMD8<UInt32>.self)
            var s = int8Lanes(w, 0) * load8(x)
            fmadd(&s, int8Lanes(w, 8), load8(x + 8))
            fmadd(&s, int8Lanes(w, 16), load8(x + 16))
            fmadd(&s, int8Lanes(w, 24), load8(x + 24))
            total += scale(p, 0) * s.sum()
        }
        return total
    }

    /// Σ_b (d_b · Σ_j q_bj · x_bj + m_b · Σ_j x_bj) over one Q4_1 row (two blocks per 8-lane step).
    @inline(__always)
    static func dotQ4_1(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>,
                        _ blocks: Int) -> Float {
        // Lane blends as bit masks (`replacing(with:where:)` with a constant mask compiles to a loop;
        // building the vector from two 4-lane halves made the compiler split all the arithmetic).
        let upper = SIMD8<UInt32>(0, 0, 0, 0, ~0, ~0, ~0, ~0)
        let hiF = SIMD8<Float>(0, 0, 0, 0, 1, 1, 1, 1), loF = 1 - hiF
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var mterm: Float = 0
        var mq = SIMD4<Float>()  // the quad loop's m·Σx terms, one lane per block of a quad
        var pair = 0
        if q4_1Quads {
            // Four blocks (80 bytes, 128 weights) per 16-lane step: half the instructions per byte of
            // the pair loop, which is what bounds this kernel (nibble extraction, not memory).
            var q0 = SIMD16<Float>(), q1 = SIMD16<Float>()
            var quad = 0
            while 4 * quad + 3 < blocks {
                let p = row + 80 * quad, x = xp + 128 * quad
                let wa: SIMD8<UInt32> = (p.advanced(by: 4).loadUnaligned(as: SIMD8<UInt32>.self) & ~upper)
                    | (p.advanced(by: 8).loadUnaligned(as: SIMD8<UInt32>.self) & upper)
                let wb: SIMD8<UInt32> = (p.advanced(by: 44).loadUnaligned(as: SIMD8<UInt32>.self) & ~upper)
                    | (p.advanced(by: 48).loadUnaligned(as: SIMD8<UInt32>.self) & upper)
                let w = SIMD16<UInt32>(lowHalf: wa, highHalf: wb)
                var s0 = nibbleLanes(w, 0) * load16(x), s1 = nibbleLanes(w, 4) * load16(x + 16)
                fmadd(&s0, nibbleLanes(w, 8), load16(x + 32)); fmadd(&s1, nibbleLanes(w, 12), load16(x + 48))
                fmadd(&s0, nibbleLanes(w, 16), load16(x + 64)); fmadd(&s1, nibbleLanes(w, 20), load16(x + 80))
                fmadd(&s0, nibbleLanes(w, 24), load16(x + 96)); fmadd(&s1, nibbleLanes(w, 28), load16(x + 112))
                // The four blocks' (d, m) pairs in one conversion: lanes d0 m0 d1 m1 d2 m2 d3 m3.
                let dm = quadScales(p)
                let d = SIMD16<Float>(dm[0], dm[0], dm[0], dm[0], dm[2], dm[2], dm[2], dm[2],
                                      dm[4], dm[4], dm[4], dm[4], dm[6], dm[6], dm[6], dm[6])
                if quad & 1 == 0 { fmadd(&q0, d, s0 + s1) } else { fmadd(&q1, d, s0 + s1) }
                fmadd(&mq, SIMD4<Float>(dm[1], dm[3], dm[5], dm[7]), UnsafeRawPointer(xsum + 4 * quad).loadUnaligned(as: SIMD4<Float>.self))
                quad += 1
            }
            let q = q0 + q1
            acc0 = q.lowHalf
            acc1 = q.highHalf
            pair = 2 * quad
        }
        while 2 * pair + 1 < blocks {
            let p = row + 40 * pair, x = xp + 64 * pair
            // Block 2p's nibbles are bytes 4..<20, block 2p+1's are 24..<40.
            let w = (p.advanced(by: 4).loadUnaligned(as: SIMD8<UInt32>.self) & ~upper)
                | (p.advanced(by: 8).loadUnaligned(as: SIMD8<UInt32>.self) & upper)
            var s0 = nibbleLanes(w, 0) * load8(x), s1 = nibbleLanes(w, 4) * load8(x + 8)
            fmadd(&s0, nibbleLanes(w, 8), load8(x + 16)); fmadd(&s1, nibbleLanes(w, 12), load8(x + 24))
            fmadd(&s0, nibbleLanes(w, 16), load8(x + 32)); fmadd(&s1, nibbleLanes(w, 20), load8(x + 40))
            fmadd(&s0, nibbleLanes(w, 24), load8(x + 48)); fmadd(&s1, nibbleLanes(w, 28), load8(x + 56))
            let d = loF * scale(p, 0) + hiF * scale(p, 20)
            if pair & 1 == 0 { fmadd(&acc0, d, s0 + s1) } else { fmadd(&acc1, d, s0 + s1) }
            mterm += scale(p, 2) * xsum[2 * pair] + scale(p, 22) * xsum[2 * pair + 1]
            pair += 1
        }
        var total = treeSum(acc0 + acc1)
        if blocks % 2 == 1 {
            let b = blocks - 1
            let p = row + 20 * b, x = xp + 32 * b
            let w = p.advanced(by: 4).loadUnaligned(as: SIMD4<UInt32>.self)
            var s = nibbleLanes(w, 0) * load4(x)
            for n in 1 ..< 8 { fmadd(&s, nibbleLanes(w, UInt32(4 * n)), load4(x + 4 * n)) }
            total += scale(p, 0) * s.sum()
            mterm += scale(p, 2) * xsum[b]
        }
        return total + (mterm + ((mq[0] + mq[1]) + (mq[2] + mq[3])))
    }

    @inline(__always) static func nibbleLanes(_ w: SIMD16<UInt32>, _ shift: UInt32) -> SIMD16<Float> {
        let bits = ((w &>> shift) & 0xF) | 0x4B00_0000
        return unsafeBitCast(bits, to: SIMD16<Float>.self) - 8_388_608
    }

    /// Q4_1 rows run four blocks per step where the vector file is 512 bits wide.
    #if KERNELS_AVX512
    @inline(__always) static var q4_1Quads: Bool { true }
    #else
    @inline(__always) static var q4_1Quads: Bool { false }
    #endif

    /// Sums by halving (the standard library's `.sum()` adds lane by lane: a dependent chain).
    @inline(__always) static func treeSum(_ v: SIMD16<Float>) -> Float { treeSum(v.lowHalf + v.highHalf) }

    @inline(__always) static func treeSum(_ v: SIMD8<Float>) -> Float {
        let h = v.lowHalf + v.highHalf, q = h.lowHalf + h.highHalf
        return q[0] + q[1]
    }

    /// The fp16 (d, m) pairs of four consecutive Q4_1 blocks (20 bytes apart) as Floats, converted
    /// together (one `vcvtph2ps` instead of eight scalar conversions).
    @inline(__always) static func quadScales(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        #if arch(x86_64) && !os(macOS)
        let w = SIMD4<UInt32>(p.loadUnaligned(fromByteOffset: 0, as: UInt32.self), p.loadUnaligned(fromByteOffset: 20, as: UInt32.self),
                              p.loadUnaligned(fromByteOffset: 40, as: UInt32.self), p.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        return SIMD8<Float>(unsafeBitCast(w, to: SIMD8<Float16>.self))
        #else
        return SIMD8<Float>(scale(p, 0), scale(p, 2), scale(p, 20), scale(p, 22), scale(p, 40), scale(p, 42), scale(p, 60), scale(p, 62))
        #endif
    }
}
