import Foundation

/// Dot products of rows x_i (centred on μ) with a few basis rows b_j, streaming X once: the fused
/// kernel behind the randomized SVD's X·Mᵀ products and the projection scores.
///
/// The basis is packed transposed into panels of one or two vectors of basis rows ([d, W] each,
/// zero-padded), so a register tile is 8 rows of X x W basis vectors: per element t, one or two
/// panel loads and 8 broadcasts of x_it - μ_t feed 8 or 16 FMAs, with no horizontal sums (8 rows
/// keep the row pointers in registers; 12 spilled and ran slower at d = 4096). Rows are centred
/// into a per-worker tile buffer first (one subtraction per element, not one per basis vector).
/// Each out element is a plain sequential sum over t, so the result does not depend on how rows
/// are grouped or split across workers, nor on the other rows.
package enum RowDots {
    /// Rows of X per register tile.
    static let tileRows = 8

    /// out[i·rs + j·cs] = <x_i - μ, b_j> for i < n, j < m. `mu == nil` means μ = 0. Overwrites out.
    /// Parallel over tiles of 8 rows; bitwise identical for any `workers`.
    /// Cost: 2·n·d·mPad flops (m rounded up to whole vectors), 4·n·d bytes of X read once.
    package static func compute(x: UnsafePointer<Float>, rows n: Int, cols d: Int, ldx: Int, mu: UnsafePointer<Float>?,
                                basis b: UnsafePointer<Float>, count m: Int, out: UnsafeMutablePointer<Float>,
                                rs: Int, cs: Int, workers: Int?) {
        precondition(n >= 0 && d >= 1 && m >= 1 && ldx >= d, "RowDots: bad shape")
        if n == 0 { return }
        let mPad = (m + vLanes - 1) / vLanes * vLanes
        let R = tileRows
        // Panels: basis columns in groups of 2·vLanes (the last group may be one vector wide).
        Workspace.withScratch(floats: mPad * d + 64) { panels in
            panels.initialize(repeating: 0, count: mPad * d)
            var q = 0
            while q < m {
                let w = panelWidth(from: q, m: m), panel = panels + q * d
                for j in q ..< min(m, q + w) {
                    let src = b + j * d
                    for t in 0 ..< d { panel[t * w + j - q] = src[t] }
                }
                q += w
            }
            let tiles = (n + R - 1) / R
            let bits = UInt(bitPattern: panels)
            Parallel.run(workers: workers, maxUseful: max(1, n / 64)) { ith, nth in
                let panels = UnsafePointer<Float>(bitPattern: bits)!
                let centred = UnsafeMutablePointer<Float>.allocate(capacity: R * d)
                defer { centred.deallocate() }
                withUnsafeTemporaryAllocation(of: Float.self, capacity: R * 2 * vLanes) { tb in
                    let tmp = tb.baseAddress!
                    for tile in Parallel.range(ith, of: nth, count: tiles) {
                        let r0 = tile * R, rows = min(R, n - r0)
                        let rowsPtr: UnsafePointer<Float>, ld: Int
                        if let mu {
                            for r in 0 ..< rows { centre(x + (r0 + r) * ldx, mu, d, into: centred + r * d) }
                            rowsPtr = UnsafePointer(centred); ld = d
                        } else {
                            rowsPtr = x + r0 * ldx; ld = ldx
                        }
                        var q = 0
                        while q < m {
                            let w = panelWidth(from: q, m: m)
                            if w == 2 * vLanes {
                                tile8x2(rowsPtr, ld, rows: rows, panels + q * d, d, out: tmp)
                            } else {
                                tile8x1(rowsPtr, ld, rows: rows, panels + q * d, d, out: tmp)
                            }
                            for r in 0 ..< rows {
                                let o = out + (r0 + r) * rs
                                for j in q ..< min(m, q + w) { o[j * cs] = tmp[r * w + j - q] }
                            }
                            q += w
                        }
                    }
                }
            }
        }
    }

    /// Width of the panel starting at basis column q: two vectors while more than one remains.
    @inline(__always)
    static func panelWidth(from q: Int, m: Int) -> Int { m - q > vLanes ? 2 * vLanes : vLanes }

    @inline(__always)
    static func centre(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ d: Int, into c: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + vLanes <= d {
            UnsafeMutableRawPointer(c + i).storeBytes(of: vload(x, i) - vload(mu, i), as: VFloat.self)
            i += vLanes
        }
        while i < d { c[i] = x[i] - mu[i]; i += 1 }
    }

    /// out[r·vLanes + l] = Σ_t x[r·ld + t]·panel[t·vLanes + l] for r < rows (missing rows alias row 0).
    @inline(__always)
    static func tile8x1(_ x: UnsafePointer<Float>, _ ld: Int, rows: Int, _ panel: UnsafePointer<Float>, _ d: Int,
                         out: UnsafeMutablePointer<Float>) {
        func row(_ r: Int) -> UnsafePointer<Float> { r < rows ? x + r * ld : x }
        let x0 = row(0), x1 = row(1), x2 = row(2), x3 = row(3), x4 = row(4), x5 = row(5)
        let x6 = row(6), x7 = row(7)
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat()
        var p = panel
        for t in 0 ..< d {
            let v = vload(p, 0)
            fmadd(&a0, VFloat(repeating: x0[t]), v); fmadd(&a1, VFloat(repeating: x1[t]), v)
            fmadd(&a2, VFloat(repeating: x2[t]), v); fmadd(&a3, VFloat(repeating: x3[t]), v)
            fmadd(&a4, VFloat(repeating: x4[t]), v); fmadd(&a5, VFloat(repeating: x5[t]), v)
            fmadd(&a6, VFloat(repeating: x6[t]), v); fmadd(&a7, VFloat(repeating: x7[t]), v)
            p += vLanes
        }
        // out holds 8 rows; the caller reads the first `rows`.
        let o = UnsafeMutableRawPointer(out), s = MemoryLayout<VFloat>.stride
        o.storeBytes(of: a0, toByteOffset: 0, as: VFloat.self); o.storeBytes(of: a1, toByteOffset: s, as: VFloat.self)
        o.storeBytes(of: a2, toByteOffset: 2 * s, as: VFloat.self); o.storeBytes(of: a3, toByteOffset: 3 * s, as: VFloat.self)
        o.storeBytes(of: a4, toByteOffset: 4 * s, as: VFloat.self); o.storeBytes(of: a5, toByteOffset: 5 * s, as: VFloat.self)
        o.storeBytes(of: a6, toByteOffset: 6 * s, as: VFloat.self); o.storeBytes(of: a7, toByteOffset: 7 * s, as: VFloat.self)

    }

    /// As `tile8x1` with a panel two vectors wide: out[r·2vLanes + l].
    @inline(__always)
    static func tile8x2(_ x: UnsafePointer<Float>, _ ld: Int, rows: Int, _ panel: UnsafePointer<Float>, _ d: Int,
                         out: UnsafeMutablePointer<Float>) {
        func row(_ r: Int) -> UnsafePointer<Float> { r < rows ? x + r * ld : x }
        let x0 = row(0), x1 = row(1), x2 = row(2), x3 = row(3), x4 = row(4), x5 = row(5)
        let x6 = row(6), x7 = row(7)
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat()
        var b0 = VFloat(), b1 = VFloat(), b2 = VFloat(), b3 = VFloat(), b4 = VFloat(), b5 = VFloat()
        var b6 = VFloat(), b7 = VFloat()
        var p = panel
        for t in 0 ..< d {
            let v = vload(p, 0), u = vload(p, vLanes)
            var s = VFloat(repeating: x0[t]); fmadd(&a0, s, v); fmadd(&b0, s, u)
            s = VFloat(repeating: x1[t]); fmadd(&a1, s, v); fmadd(&b1, s, u)
            s = VFloat(repeating: x2[t]); fmadd(&a2, s, v); fmadd(&b2, s, u)
            s = VFloat(repeating: x3[t]); fmadd(&a3, s, v); fmadd(&b3, s, u)
            s = VFloat(repeating: x4[t]); fmadd(&a4, s, v); fmadd(&b4, s, u)
            s = VFloat(repeating: x5[t]); fmadd(&a5, s, v); fmadd(&b5, s, u)
            s = VFloat(repeating: x6[t]); fmadd(&a6, s, v); fmadd(&b6, s, u)
            s = VFloat(repeating: x7[t]); fmadd(&a7, s, v); fmadd(&b7, s, u)
            p += 2 * vLanes
        }
        let o = UnsafeMutableRawPointer(out), s = MemoryLayout<VFloat>.stride
        func put(_ r: Int, _ a: VFloat, _ b: VFloat) {
            o.storeBytes(of: a, toByteOffset: 2 * r * s, as: VFloat.self)
            o.storeBytes(of: b, toByteOffset: (2 * r + 1) * s, as: VFloat.self)
        }
        put(0, a0, b0); put(1, a1, b1); put(2, a2, b2); put(3, a3, b3); put(4, a4, b4); put(5, a5, b5)
        put(6, a6, b6); put(7, a7, b7)
    }
}
