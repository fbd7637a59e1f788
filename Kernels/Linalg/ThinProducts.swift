import Foundation

/// Products of a tall n x d matrix X with a thin n x l matrix Q (l <= ~64) that stream X once
/// and never pack it: for l this small GEMM's packing of X costs as much as the arithmetic.
package enum ThinProducts {
    /// Z (l x d) = Qᵀ X_block, accumulated over row blocks: `z` is overwritten when `overwrite`,
    /// else added to. `q` is the block's rows of Q (rows x l, row-major, row stride l).
    /// Each worker owns a range of columns of Z and adds the rows in order, so the result is
    /// bitwise identical for any `workers` and any row-block partition of X.
    /// Kernel: for two vectors of columns and 8 rows of Z, 16 accumulators; per row of X two
    /// vector loads, 8 broadcasts and 16 FMAs. Rows are taken in chunks of 64 so the chunk stays in L2 while
    /// all l rows of Z pass over it. Cost: 2·rows·d·l flops, 4·rows·d bytes.
    package static func accumulateQtX(q: UnsafePointer<Float>, l: Int, x: UnsafePointer<Float>, rows: Int, cols d: Int,
                                      ldx: Int, z: UnsafeMutablePointer<Float>, overwrite: Bool, workers: Int?) {
        precondition(l >= 1 && rows >= 0 && d >= 1 && ldx >= d, "ThinProducts.accumulateQtX: bad shape")
        if overwrite { z.update(repeating: 0, count: l * d) }
        if rows == 0 { return }
        let width = 2 * vLanes
        let chunks = (d + width - 1) / width
        let bits = (UInt(bitPattern: q), UInt(bitPattern: x), UInt(bitPattern: z))
        Parallel.run(workers: workers, maxUseful: max(1, min(chunks, rows * d * l / (1 << 16)))) { ith, nth in
            let q = UnsafePointer<Float>(bitPattern: bits.0)!, x = UnsafePointer<Float>(bitPattern: bits.1)!
            let z = UnsafeMutablePointer<Float>(bitPattern: bits.2)!
            let cr = Parallel.range(ith, of: nth, count: chunks)
            if cr.isEmpty { return }
            let rowChunk = 64
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + rowChunk)
                for c in cr {
                    let col = c * width
                    if col + width <= d {
                        var j = 0
                        while j + 8 <= l { rows8x2(q, l, j, x, ldx, r0, r1, col, z + j * d, d); j += 8 }
                        while j + 4 <= l { rows4x2(q, l, j, x, ldx, r0, r1, col, z + j * d, d); j += 4 }
                        while j < l { rows1x1(q, l, j, x, ldx, r0, r1, col, z + j * d); rows1x1(q, l, j, x, ldx, r0, r1, col + vLanes, z + j * d); j += 1 }
                    } else {
                        var cc = col
                        while cc + vLanes <= d {
                            for j in 0 ..< l { rows1x1(q, l, j, x, ldx, r0, r1, cc, z + j * d) }
                            cc += vLanes
                        }
                        for j in 0 ..< l {
                            for t in cc ..< d {
                                var s = z[j * d + t]
                                for r in r0 ..< r1 { s += q[r * l + j] * x[r * ldx + t] }
                                z[j * d + t] = s
                            }
                        }
                    }
                }
                r0 = r1
            }
        }
    }

    /// Z rows j..<j+8, columns col..<col+2·vLanes: 16 accumulators; per X row 2 vector loads,
    /// 8 broadcasts, 16 FMAs.
    @inline(__always)
    static func rows8x2(_ q: UnsafePointer<Float>, _ l: Int, _ j: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                        _ r0: Int, _ r1: Int, _ col: Int, _ z: UnsafeMutablePointer<Float>, _ d: Int) {
        let c1 = col + vLanes
        var a0 = vload(z, col), a1 = vload(z + d, col), a2 = vload(z + 2 * d, col), a3 = vload(z + 3 * d, col)
        var a4 = vload(z + 4 * d, col), a5 = vload(z + 5 * d, col), a6 = vload(z + 6 * d, col), a7 = vload(z + 7 * d, col)
        var b0 = vload(z, c1), b1 = vload(z + d, c1), b2 = vload(z + 2 * d, c1), b3 = vload(z + 3 * d, c1)
        var b4 = vload(z + 4 * d, c1), b5 = vload(z + 5 * d, c1), b6 = vload(z + 6 * d, c1), b7 = vload(z + 7 * d, c1)
        for r in r0 ..< r1 {
            let xr = x + r * ldx
            let xa = vload(xr, col), xb = vload(xr, c1)
            let qr = q + r * l + j
            var s = VFloat(repeating: qr[0]); fmadd(&a0, s, xa); fmadd(&b0, s, xb)
            s = VFloat(repeating: qr[1]); fmadd(&a1, s, xa); fmadd(&b1, s, xb)
            s = VFloat(repeating: qr[2]); fmadd(&a2, s, xa); fmadd(&b2, s, xb)
            s = VFloat(repeating: qr[3]); fmadd(&a3, s, xa); fmadd(&b3, s, xb)
            s = VFloat(repeating: qr[4]); fmadd(&a4, s, xa); fmadd(&b4, s, xb)
            s = VFloat(repeating: qr[5]); fmadd(&a5, s, xa); fmadd(&b5, s, xb)
            s = VFloat(repeating: qr[6]); fmadd(&a6, s, xa); fmadd(&b6, s, xb)
            s = VFloat(repeating: qr[7]); fmadd(&a7, s, xa); fmadd(&b7, s, xb)
        }
        vstore(a0, z, col); vstore(a1, z + d, col); vstore(a2, z + 2 * d, col); vstore(a3, z + 3 * d, col)
        vstore(a4, z + 4 * d, col); vstore(a5, z + 5 * d, col); vstore(a6, z + 6 * d, col); vstore(a7, z + 7 * d, col)
        vstore(b0, z, c1); vstore(b1, z + d, c1); vstore(b2, z + 2 * d, c1); vstore(b3, z + 3 * d, c1)
        vstore(b4, z + 4 * d, c1); vstore(b5, z + 5 * d, c1); vstore(b6, z + 6 * d, c1); vstore(b7, z + 7 * d, c1)
    }

    @inline(__always)
    static func rows4x2(_ q: UnsafePointer<Float>, _ l: Int, _ j: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                        _ r0: Int, _ r1: Int, _ col: Int, _ z: UnsafeMutablePointer<Float>, _ d: Int) {
        let c1 = col + vLanes
        var a0 = vload(z, col), a1 = vload(z + d, col), a2 = vload(z + 2 * d, col), a3 = vload(z + 3 * d, col)
        var b0 = vload(z, c1), b1 = vload(z + d, c1), b2 = vload(z + 2 * d, c1), b3 = vload(z + 3 * d, c1)
        for r in r0 ..< r1 {
            let xr = x + r * ldx
            let xa = vload(xr, col), xb = vload(xr, c1)
            let qr = q + r * l + j
            var s = VFloat(repeating: qr[0]); fmadd(&a0, s, xa); fmadd(&b0, s, xb)
            s = VFloat(repeating: qr[1]); fmadd(&a1, s, xa); fmadd(&b1, s, xb)
            s = VFloat(repeating: qr[2]); fmadd(&a2, s, xa); fmadd(&b2, s, xb)
            s = VFloat(repeating: qr[3]); fmadd(&a3, s, xa); fmadd(&b3, s, xb)
        }
        vstore(a0, z, col); vstore(a1, z + d, col); vstore(a2, z + 2 * d, col); vstore(a3, z + 3 * d, col)
        vstore(b0, z, c1); vstore(b1, z + d, c1); vstore(b2, z + 2 * d, c1); vstore(b3, z + 3 * d, c1)
    }

    @inline(__always)
    static func rows1x1(_ q: UnsafePointer<Float>, _ l: Int, _ j: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                        _ r0: Int, _ r1: Int, _ col: Int, _ z: UnsafeMutablePointer<Float>) {
        var a = vload(z, col)
        for r in r0 ..< r1 { fmadd(&a, VFloat(repeating: q[r * l + j]), vload(x + r * ldx, col)) }
        vstore(a, z, col)
    }

    /// dst (l x len) = W · src for a lower-triangular l x l `w` (row-major): the triangular
    /// multiply of CholeskyQR. `dst` may alias `src` (rows are produced from the last to the
    /// first, and row i only reads rows <= i). Parallel over column chunks (bitwise identical
    /// for any `workers`).
    package static func lowerTimes(_ w: UnsafePointer<Float>, _ l: Int, src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>,
                                   length len: Int, workers: Int?) {
        let width = 2 * vLanes
        let chunks = (len + width - 1) / width
        let bits = (UInt(bitPattern: w), UInt(bitPattern: src), UInt(bitPattern: dst))
        Parallel.run(workers: workers, maxUseful: max(1, min(chunks, len * l * l / (1 << 17)))) { ith, nth in
            let w = UnsafePointer<Float>(bitPattern: bits.0)!, src = UnsafePointer<Float>(bitPattern: bits.1)!
            let dst = UnsafeMutablePointer<Float>(bitPattern: bits.2)!
            for c in Parallel.range(ith, of: nth, count: chunks) {
                let col = c * width
                if col + width <= len {
                    for i in stride(from: l - 1, through: 0, by: -1) {
                        var a = VFloat(), b = VFloat()
                        for j in 0 ... i {
                            let s = VFloat(repeating: w[i * l + j])
                            fmadd(&a, s, vload(src + j * len, col)); fmadd(&b, s, vload(src + j * len, col + vLanes))
                        }
                        vstore(a, dst + i * len, col); vstore(b, dst + i * len, col + vLanes)
                    }
                } else {
                    for i in stride(from: l - 1, through: 0, by: -1) {
                        for t in col ..< len {
                            var a: Float = 0
                            for j in 0 ... i { a += w[i * l + j] * src[j * len + t] }
                            dst[i * len + t] = a
                        }
                    }
                }
            }
        }
    }

    /// G = X Xᵀ (l x l, Double, symmetric) for the l rows of x (length `len`): each entry one
    /// Float SIMD dot product (4 accumulators) summed into Double per 1024 elements.
    /// Entries are independent tasks, so the result is identical for any `workers`.
    package static func gram(_ x: UnsafePointer<Float>, rows l: Int, length len: Int, workers: Int?) -> [Double] {
        var g = [Double](repeating: 0, count: l * l)
        let pairs = l * (l + 1) / 2
        g.withUnsafeMutableBufferPointer { gb in
            let gp = UInt(bitPattern: gb.baseAddress!), xp = UInt(bitPattern: x)
            Parallel.forEach(pairs, workers: len * pairs < (1 << 16) ? 1 : workers) { t in
                let g = UnsafeMutablePointer<Double>(bitPattern: gp)!, x = UnsafePointer<Float>(bitPattern: xp)!
                // Pair index t -> (i, j), i <= j.
                var i = 0, rem = t
                while rem >= l - i { rem -= l - i; i += 1 }
                let j = i + rem
                let s = dot(x + i * len, x + j * len, len)
                g[i * l + j] = s; g[j * l + i] = s
            }
        }
        return g
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        var i = 0
        let step = 4 * vLanes
        while i + step <= n {
            var s0 = VFloat(), s1 = VFloat(), s2 = VFloat(), s3 = VFloat()
            let end = min(n, i + 1024) / step * step
            while i < end {
                fmadd(&s0, vload(a, i), vload(b, i)); fmadd(&s1, vload(a, i + vLanes), vload(b, i + vLanes))
                fmadd(&s2, vload(a, i + 2 * vLanes), vload(b, i + 2 * vLanes)); fmadd(&s3, vload(a, i + 3 * vLanes), vload(b, i + 3 * vLanes))
                i += step
            }
            total += Double(((s0 + s1) + (s2 + s3)).sum())
        }
        while i < n { total += Double(a[i]) * Double(b[i]); i += 1 }
        return total
    }
}
