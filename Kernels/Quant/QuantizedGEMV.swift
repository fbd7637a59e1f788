/// Decode-time matrix-vector product reading quantized weight rows directly.
///
/// y[n] = Σ_k W[n, k]·x[k], W stored row-major as N rows of K values in GGUF blocks (the
/// layout of a GGUF tensor with ne0 = K, ne1 = N). Blocks are dequantized in registers and
/// never written to memory, so the kernel is bound by the bandwidth of reading W.
///
/// Register dequantization without widening conversions: a block's quants are loaded as 32-bit
/// lanes and each byte (Q8_0) or nibble (Q4_1) position is isolated *in place* and converted as a
/// 32-bit integer (one `vcvtdq2ps`): a Q4_1 nibble at bit 4n becomes q·2^(4n), a Q8_0 byte moved to
/// the top of the lane becomes q·2^24. The power of two is exact and cancels against x pre-scaled
/// by 2^-4n (Q4_1, once per call) or against d·2^-24 (Q8_0), so every product q·x is the same
/// Float as with q itself; this saves the shift, OR and subtraction per 16 weights that isolating
/// the value and rebuilding it as a float took, which is what bounds the kernel. Lane j holds
/// element 4j + i of the block, so x is permuted once per call to the same order (a dot product
/// does not care about the order of its terms). Where vectors are 512 bits wide, Q4_1 rows run two
/// at a time so that each x vector loaded serves both (x loads were a third of the loop's loads).
public enum QuantizedGEMV {
    /// Supported weight types.
    public static func supports(_ type: GGMLType) -> Bool { type == .q8_0 || type == .q4_1 }

    /// y[n] = Σ_k W[n, k]·x[k] for n < rows (overwrites y).
    ///
    /// Shapes: `w` is rows·`type.rowBytes(count: columns)` bytes; `x` is (columns) floats;
    /// `y` is (rows). `columns` is a multiple of 32 (checked). Types: Q8_0 (x = q·d) and
    /// Q4_1 (x = q·d + m, computed as d·Σ q·x + m·Σ x per block, Σ x precomputed once per call).
    /// Contract: overwrites `y`; parallel over contiguous row ranges; bitwise identical for any
    /// `workers` (a row's arithmetic does not depend on the row it is paired with). Accumulation is
    /// per row in Float (per block Σ q·x, then scaled by d); the error bound is that of a dot product
    /// of length K over the dequantized weights.
    /// Scratch: columns + columns/32 floats. Cost: 2·rows·columns FLOPs; reads rows·rowBytes + 4·columns bytes.
    public static func gemv(_ type: GGMLType, w: UnsafeRawPointer, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, workers: Int? = nil,
                            layout: Layout = .blocks) {
        precondition(supports(type), "QuantizedGEMV: \(type.name) is not supported (Q8_0, Q4_1)")
        precondition(layout == .blocks || type == .q4_1, "QuantizedGEMV: the quad layout is Q4_1's")
        precondition(rows >= 0 && columns >= 0 && columns % 32 == 0,
                     "QuantizedGEMV: columns \(columns) must be a multiple of 32")
        let K = columns, blocks = K / 32
        let rowBytes = type.rowBytes(count: K)!
        let useful = max(1, rows * rowBytes / 65536)
        let quads = q4_1Quads || layout == .quads, packed = layout == .quads
        Workspace.withScratch(floats: K + blocks + 16) { scratch in
            let xp = scratch, xsum = scratch + K
            permute(type, x, into: xp, sums: xsum, blocks: blocks, quads: quads)
            switch type {
            case .q8_0:
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    for n in Parallel.range(ith, of: nth, count: rows) { y[n] = dotQ8_0(w + n * rowBytes, xp, blocks) }
                }
            case .q4_1 where !quads:
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    for n in Parallel.range(ith, of: nth, count: rows) { y[n] = dotQ4_1Tail(w + n * rowBytes, xp, xsum, blocks, from: 0) }
                }
            case .q4_1:
                // Rows in pairs; a lone row runs paired with itself, so that a row's arithmetic never
                // depends on its neighbour (pairs follow the workers' ranges; results must not).
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    let range = Parallel.range(ith, of: nth, count: rows)
                    var n = range.lowerBound
                    while n < range.upperBound {
                        let n1 = min(n + 1, range.upperBound - 1)
                        let r = packed ? dotQ4_1(w + n * rowBytes, w + n1 * rowBytes, xp, xsum, blocks, packed: true)
                                       : dotQ4_1(w + n * rowBytes, w + n1 * rowBytes, xp, xsum, blocks, packed: false)
                        y[n] = r.0
                        if n1 > n { y[n1] = r.1 }
                        n += 2
                    }
                }
            default:
                preconditionFailure("unreachable")
            }
        }
    }

    /// How a matrix's blocks are laid out in memory.
    public enum Layout: Sendable, Equatable {
        /// GGUF's: one block after another (Q4_1: f16 d, f16 m, 16 bytes of nibbles).
        case blocks
        /// Q4_1 only, per row: every four blocks as their 64 nibble bytes, then their four f16 d, then
        /// their four f16 m (80 bytes, as before); the last row's `blocks % 4` blocks stay as GGUF's.
        /// One 64-byte load and one 16-byte load per four blocks instead of eight scattered ones.
        case quads
    }

    /// True where the quad layout makes Q4_1 faster (512-bit vectors), so loaders repack into it.
    public static var prefersQuadLayout: Bool { q4_1Quads }

    /// Copies `rows` Q4_1 rows of `columns` values from GGUF's layout into the quad layout (same size).
    public static func packQuads(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, rows: Int, columns: Int) {
        precondition(columns % 32 == 0 && rows >= 0, "QuantizedGEMV.packQuads: columns \(columns) must be a multiple of 32")
        let blocks = columns / 32, rowBytes = 20 * blocks, quads = blocks / 4
        for r in 0 ..< rows {
            let s = src + r * rowBytes, d = dst + r * rowBytes
            for q in 0 ..< quads {
                let sq = s + 80 * q, dq = d + 80 * q
                for b in 0 ..< 4 {
                    dq.storeBytes(of: sq.loadUnaligned(fromByteOffset: 20 * b + 4, as: SIMD4<UInt32>.self), toByteOffset: 16 * b,
                                  as: SIMD4<UInt32>.self)
                    dq.storeBytes(of: sq.loadUnaligned(fromByteOffset: 20 * b, as: UInt16.self), toByteOffset: 64 + 2 * b, as: UInt16.self)
                    dq.storeBytes(of: sq.loadUnaligned(fromByteOffset: 20 * b + 2, as: UInt16.self), toByteOffset: 72 + 2 * b, as: UInt16.self)
                }
            }
            (d + 80 * quads).copyMemory(from: s + 80 * quads, byteCount: 20 * (blocks - 4 * quads))
        }
    }

    /// x in the lane order the dot kernels extract quants in, plus per-block sums of x (Q4_1).
    ///   Q8_0, block pair (2p, 2p+1): xp[64p + 16i + L] = x[32(2p + L/8) + 4(L%8) + i], byte i < 4, lane L < 16;
    ///         odd last block b:      xp[32b + 8i + j]   = x[32b + 4j + i].
    ///   Q4_1, block quad (`quads`):   xp[128q + 16n + L] = x[32(4q + L/4) + 4(L%4) + n/2 + 16(n%2)], nibble n < 8, L < 16;
    ///         then block pairs:      xp[64p + 8n + L]   = x[32(2p + L/4) + 4(L%4) + n/2 + 16(n%2)], nibble n < 8, L < 8;
    ///         odd last block b:      xp[32b + 4n + j]   = x[32b + 4j + n/2 + 16(n%2)];
    ///         each Q4_1 entry times `nibbleScale(n)`, the inverse of the nibble's in-place weight.
    static func permute(_ type: GGMLType, _ x: UnsafePointer<Float>, into xp: UnsafeMutablePointer<Float>,
                        sums: UnsafeMutablePointer<Float>, blocks: Int, quads useQuads: Bool) {
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
            let quads = useQuads ? blocks / 4 : 0
            for q in 0 ..< quads {
                for n in 0 ..< 8 {
                    for L in 0 ..< 16 { xp[128 * q + 16 * n + L] = x[32 * (4 * q + L / 4) + 4 * (L % 4) + n / 2 + 16 * (n % 2)] * nibbleScale(n) }
                }
            }
            for p in 2 * quads ..< pairs {
                for n in 0 ..< 8 {
                    for L in 0 ..< 8 { xp[64 * p + 8 * n + L] = x[32 * (2 * p + L / 4) + 4 * (L % 4) + n / 2 + 16 * (n % 2)] * nibbleScale(n) }
                }
            }
            if blocks % 2 == 1 {
                let b = blocks - 1
                for n in 0 ..< 8 { for j in 0 ..< 4 { xp[32 * b + 4 * n + j] = x[32 * b + 4 * j + n / 2 + 16 * (n % 2)] * nibbleScale(n) } }
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

    /// Signed byte `i` of every lane moved to the top byte, as Float: q·2^24 exactly.
    @inline(__always) static func int8Lanes(_ w: SIMD16<UInt32>, _ i: Int) -> SIMD16<Float> {
        let top = i == 3 ? w & 0xFF00_0000 : i == 0 ? w &<< 24 : (w &<< UInt32(24 - 8 * i)) & 0xFF00_0000
        return floatLanes(SIMD16<Int32>(truncatingIfNeeded: top))
    }
    @inline(__always) static func int8Lanes(_ w: SIMD8<UInt32>, _ i: Int) -> SIMD8<Float> {
        let top = i == 3 ? w & 0xFF00_0000 : i == 0 ? w &<< 24 : (w &<< UInt32(24 - 8 * i)) & 0xFF00_0000
        return floatLanes(SIMD8<Int32>(truncatingIfNeeded: top))
    }
    /// Q8_0's in-place factor, folded into the block scale.
    @inline(__always) static var int8Scale: Float { 0x1p-24 }

    /// Nibble `n` (bits 4n..<4n+4) of every lane, as Float q·2^(4n) without moving it (n < 7), or
    /// q·2^24 after a 4-bit shift (n = 7: the top nibble would not fit a positive Int32).
    @inline(__always) static func nibbleLanes(_ w: SIMD16<UInt32>, _ n: Int) -> SIMD16<Float> {
        let v = n == 7 ? (w &>> 4) & 0x0F00_0000 : w & (0xF &<< UInt32(4 * n))
        return floatLanes(SIMD16<Int32>(truncatingIfNeeded: v))
    }
    @inline(__always) static func nibbleLanes(_ w: SIMD8<UInt32>, _ n: Int) -> SIMD8<Float> {
        let v = n == 7 ? (w &>> 4) & 0x0F00_0000 : w & (0xF &<< UInt32(4 * n))
        return floatLanes(SIMD8<Int32>(truncatingIfNeeded: v))
    }
    @inline(__always) static func nibbleLanes(_ w: SIMD4<UInt32>, _ n: Int) -> SIMD4<Float> {
        let v = n == 7 ? (w &>> 4) & 0x0F00_0000 : w & (0xF &<< UInt32(4 * n))
        return floatLanes(SIMD4<Int32>(truncatingIfNeeded: v))
    }
    /// The inverse of `nibbleLanes`' factor for nibble n, applied to x once per call.
    @inline(__always) static func nibbleScale(_ n: Int) -> Float { Float(sign: .plus, exponent: -4 * min(n, 6), significand: 1) }

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
            var s0 = int8Lanes(w, 0) * load16(x), s1 = int8Lanes(w, 1) * load16(x + 16)
            fmadd(&s0, int8Lanes(w, 2), load16(x + 32))
            fmadd(&s1, int8Lanes(w, 3), load16(x + 48))
            let d = SIMD16(lowHalf: SIMD8<Float>(repeating: scale(p, 0)), highHalf: SIMD8<Float>(repeating: scale(p, 34))) * int8Scale
            if pair & 1 == 0 { fmadd(&acc0, d, s0 + s1) } else { fmadd(&acc1, d, s0 + s1) }
            pair += 1
        }
        var total = treeSum(acc0 + acc1)
        if blocks % 2 == 1 {
            let b = blocks - 1
            let p = row + 34 * b, x = xp + 32 * b
            let w = p.advanced(by: 2).loadUnaligned(as: SIMD8<UInt32>.self)
            var s = int8Lanes(w, 0) * load8(x)
            fmadd(&s, int8Lanes(w, 1), load8(x + 8))
            fmadd(&s, int8Lanes(w, 2), load8(x + 16))
            fmadd(&s, int8Lanes(w, 3), load8(x + 24))
            total += scale(p, 0) * int8Scale * s.sum()
        }
        return total
    }

    /// Two Q4_1 rows at once, Σ_b (d_b · Σ_j q_bj · x_bj + m_b · Σ_j x_bj) each: each x vector loaded
    /// once serves both rows; four blocks per 16-lane step (GGUF's layout or the quad layout, same
    /// arithmetic), then one step with a block pair of each row in one half, then an odd block.
    @inline(__always)
    static func dotQ4_1(_ row0: UnsafeRawPointer, _ row1: UnsafeRawPointer, _ xp: UnsafePointer<Float>,
                        _ xsum: UnsafePointer<Float>, _ blocks: Int, packed: Bool) -> (Float, Float) {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>(), mq0 = SIMD4<Float>(), mq1 = SIMD4<Float>()
        let quads = blocks / 4
        for quad in 0 ..< quads {
            let x = xp + 128 * quad, p0 = row0 + 80 * quad, p1 = row1 + 80 * quad
            let w0 = packed ? p0.loadUnaligned(as: SIMD16<UInt32>.self) : quadQuants(p0)
            let w1 = packed ? p1.loadUnaligned(as: SIMD16<UInt32>.self) : quadQuants(p1)
            var s0 = nibbleLanes(w0, 0) * load16(x), t0 = nibbleLanes(w1, 0) * load16(x)
            var s1 = nibbleLanes(w0, 1) * load16(x + 16), t1 = nibbleLanes(w1, 1) * load16(x + 16)
            for n in stride(from: 2, to: 8, by: 2) {
                let xa = load16(x + 16 * n), xb = load16(x + 16 * n + 16)
                fmadd(&s0, nibbleLanes(w0, n), xa); fmadd(&t0, nibbleLanes(w1, n), xa)
                fmadd(&s1, nibbleLanes(w0, n + 1), xb); fmadd(&t1, nibbleLanes(w1, n + 1), xb)
            }
            let sums = UnsafeRawPointer(xsum + 4 * quad).loadUnaligned(as: SIMD4<Float>.self)
            let (d0, m0) = packed ? packedScales(p0) : ggufScales(p0)
            let (d1, m1) = packed ? packedScales(p1) : ggufScales(p1)
            fmadd(&acc0, d0, s0 + s1); fmadd(&acc1, d1, t0 + t1)
            fmadd(&mq0, m0, sums); fmadd(&mq1, m1, sums)
        }
        var done = 4 * quads
        if done + 2 <= blocks {
            // Blocks (b, b+1) of row 0 in lanes 0..<8, of row 1 in lanes 8..<16 (pair-permuted x, twice).
            let b = done, x = xp + 32 * b, p0 = row0 + 20 * b, p1 = row1 + 20 * b
            let w = SIMD16<UInt32>(lowHalf: pairQuants(p0), highHalf: pairQuants(p1))
            var s0 = nibbleLanes(w, 0) * twice(x), s1 = nibbleLanes(w, 1) * twice(x + 8)
            for n in stride(from: 2, to: 8, by: 2) {
                fmadd(&s0, nibbleLanes(w, n), twice(x + 8 * n)); fmadd(&s1, nibbleLanes(w, n + 1), twice(x + 8 * n + 8))
            }
            let dm = pairScales(p0, p1)  // d0a m0a d0b m0b d1a m1a d1b m1b
            let t = quadD(dm) * (s0 + s1)
            acc0 += SIMD16(lowHalf: t.lowHalf, highHalf: SIMD8())
            acc1 += SIMD16(lowHalf: t.highHalf, highHalf: SIMD8())
            let sums = SIMD4<Float>(xsum[b], xsum[b + 1], 0, 0)
            fmadd(&mq0, SIMD4(dm[1], dm[3], 0, 0), sums); fmadd(&mq1, SIMD4(dm[5], dm[7], 0, 0), sums)
            done += 2
        }
        let tail0 = dotQ4_1Tail(row0, xp, xsum, blocks, from: done), tail1 = dotQ4_1Tail(row1, xp, xsum, blocks, from: done)
        return (treeSum(acc0) + ((mq0[0] + mq0[1]) + (mq0[2] + mq0[3])) + tail0,
                treeSum(acc1) + ((mq1[0] + mq1[1]) + (mq1[2] + mq1[3])) + tail1)
    }

    /// A quad-layout quad's d (spread over each block's four lanes) and m (one lane per block).
    @inline(__always) static func packedScales(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD4<Float>) {
        #if (arch(x86_64) && !os(macOS)) || arch(arm64)
        let dm = SIMD8<Float>(p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float16>.self))
        #else
        let dm = SIMD8<Float>(scale(p, 64), scale(p, 66), scale(p, 68), scale(p, 70), scale(p, 72), scale(p, 74), scale(p, 76), scale(p, 78))
        #endif
        return (SIMD16<Float>(dm[0], dm[0], dm[0], dm[0], dm[1], dm[1], dm[1], dm[1], dm[2], dm[2], dm[2], dm[2], dm[3], dm[3], dm[3], dm[3]),
                dm.highHalf)
    }

    @inline(__always) static func twice(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        let v = load8(p)
        return SIMD16(lowHalf: v, highHalf: v)
    }

    /// The quants of blocks b, b+1 (`p` at block b): block b's 16 bytes in lanes 0..<4, b+1's in 4..<8.
    @inline(__always) static func pairQuants(_ p: UnsafeRawPointer) -> SIMD8<UInt32> {
        SIMD8(lowHalf: p.loadUnaligned(fromByteOffset: 4, as: SIMD4<UInt32>.self),
              highHalf: p.loadUnaligned(fromByteOffset: 24, as: SIMD4<UInt32>.self))
    }

    /// The fp16 (d, m) pairs of two blocks at `p0` and two at `p1` (each pair 20 bytes apart) as
    /// Floats, d0 m0 d1 m1 d2 m2 d3 m3, converted together (one `vcvtph2ps`, not eight scalar ones).
    @inline(__always) static func pairScales(_ p0: UnsafeRawPointer, _ p1: UnsafeRawPointer) -> SIMD8<Float> {
        #if arch(x86_64) && !os(macOS)
        let w = SIMD4<UInt32>(p0.loadUnaligned(fromByteOffset: 0, as: UInt32.self), p0.loadUnaligned(fromByteOffset: 20, as: UInt32.self),
                              p1.loadUnaligned(fromByteOffset: 0, as: UInt32.self), p1.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        return SIMD8<Float>(unsafeBitCast(w, to: SIMD8<Float16>.self))
        #else
        return SIMD8<Float>(scale(p0, 0), scale(p0, 2), scale(p0, 20), scale(p0, 22), scale(p1, 0), scale(p1, 2), scale(p1, 20), scale(p1, 22))
        #endif
    }

    /// The quants of four blocks as 16 lanes: block i's 16 bytes (offset 20i + 4) in lanes 4i..<4i+4.
    @inline(__always) static func quadQuants(_ p: UnsafeRawPointer) -> SIMD16<UInt32> {
        // Four 16-byte loads inserted into one register (bit-mask blends of overlapping 32-byte
        // loads compiled to masked broadcasts and mask-register shuffles once two rows interleave).
        SIMD16<UInt32>(lowHalf: SIMD8(lowHalf: p.loadUnaligned(fromByteOffset: 4, as: SIMD4<UInt32>.self),
                                      highHalf: p.loadUnaligned(fromByteOffset: 24, as: SIMD4<UInt32>.self)),
                       highHalf: SIMD8(lowHalf: p.loadUnaligned(fromByteOffset: 44, as: SIMD4<UInt32>.self),
                                       highHalf: p.loadUnaligned(fromByteOffset: 64, as: SIMD4<UInt32>.self)))
    }
    /// A GGUF-layout quad's d (spread over each block's four lanes) and m (one lane per block).
    @inline(__always) static func ggufScales(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD4<Float>) {
        let dm = quadScales(p)
        return (quadD(dm), quadM(dm))
    }
    /// d of each block of a quad, spread over its four lanes (from `quadScales`' d0 m0 d1 m1 ... order).
    @inline(__always) static func quadD(_ dm: SIMD8<Float>) -> SIMD16<Float> {
        SIMD16<Float>(dm[0], dm[0], dm[0], dm[0], dm[2], dm[2], dm[2], dm[2], dm[4], dm[4], dm[4], dm[4], dm[6], dm[6], dm[6], dm[6])
    }
    @inline(__always) static func quadM(_ dm: SIMD8<Float>) -> SIMD4<Float> { SIMD4<Float>(dm[1], dm[3], dm[5], dm[7]) }

    /// Blocks `from`..< of a Q4_1 row: two blocks per 8-lane step, then an odd last block.
    @inline(__always)
    static func dotQ4_1Tail(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>,
                            _ blocks: Int, from first: Int) -> Float {
        // Lane blends as bit masks (`replacing(with:where:)` with a constant mask compiles to a loop).
        let upper = SIMD8<UInt32>(0, 0, 0, 0, ~0, ~0, ~0, ~0)
        let hiF = SIMD8<Float>(0, 0, 0, 0, 1, 1, 1, 1), loF = 1 - hiF
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var mterm: Float = 0
        var pair = first / 2
        while 2 * pair + 1 < blocks {
            let p = row + 40 * pair, x = xp + 64 * pair
            // Block 2p's nibbles are bytes 4..<20, block 2p+1's are 24..<40.
            let w = (p.advanced(by: 4).loadUnaligned(as: SIMD8<UInt32>.self) & ~upper)
                | (p.advanced(by: 8).loadUnaligned(as: SIMD8<UInt32>.self) & upper)
            var s0 = nibbleLanes(w, 0) * load8(x), s1 = nibbleLanes(w, 1) * load8(x + 8)
            fmadd(&s0, nibbleLanes(w, 2), load8(x + 16)); fmadd(&s1, nibbleLanes(w, 3), load8(x + 24))
            fmadd(&s0, nibbleLanes(w, 4), load8(x + 32)); fmadd(&s1, nibbleLanes(w, 5), load8(x + 40))
            fmadd(&s0, nibbleLanes(w, 6), load8(x + 48)); fmadd(&s1, nibbleLanes(w, 7), load8(x + 56))
            let d = loF * scale(p, 0) + hiF * scale(p, 20)
            if pair & 1 == 0 { fmadd(&acc0, d, s0 + s1) } else { fmadd(&acc1, d, s0 + s1) }
            mterm += scale(p, 2) * xsum[2 * pair] + scale(p, 22) * xsum[2 * pair + 1]
            pair += 1
        }
        var total = treeSum(acc0 + acc1)
        if blocks % 2 == 1 && first < blocks {
            let b = blocks - 1
            let p = row + 20 * b, x = xp + 32 * b
            let w = p.advanced(by: 4).loadUnaligned(as: SIMD4<UInt32>.self)
            var s = nibbleLanes(w, 0) * load4(x)
            for n in 1 ..< 8 { fmadd(&s, nibbleLanes(w, n), load4(x + 4 * n)) }
            total += scale(p, 0) * s.sum()
            mterm += scale(p, 2) * xsum[b]
        }
        return total + mterm
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

    /// The fp16 (d, m) pairs of four consecutive Q4_1 blocks (20 bytes apart) as Floats.
    @inline(__always) static func quadScales(_ p: UnsafeRawPointer) -> SIMD8<Float> { pairScales(p, p + 40) }
}
