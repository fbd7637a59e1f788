import Foundation

/// Column sums of row blocks accumulated in Double: the mean of a tall matrix in one pass.
package enum ColumnSums {
    /// s[j] += Σ_r x[r·ld + j] for j in 0..<d (accumulates), r in 0..<rows; each worker owns a
    /// range of columns and adds its rows in order, so the result is independent of `workers`.
    /// Rows are summed in Float in groups of 16 (error <= 16·eps relative per group) before the
    /// Double accumulation. Cost: n·d adds, reading the block once.
    package static func accumulate(_ x: UnsafePointer<Float>, rows: Int, cols d: Int, ld: Int,
                                   into s: UnsafeMutablePointer<Double>, workers: Int?) {
        let group = 16
        let chunk = 8
        let chunks = (d + chunk - 1) / chunk
        Parallel.run(workers: workers, maxUseful: max(1, min(chunks, rows * d / 65536))) { ith, nth in
            let cr = Parallel.range(ith, of: nth, count: chunks)
            if cr.isEmpty { return }
            let j0 = cr.lowerBound * chunk, j1 = min(d, cr.upperBound * chunk)
            var r = 0
            while r < rows {
                let g = min(group, rows - r)
                var j = j0
                while j + chunk <= j1 {
                    var acc = SIMD8<Float>()
                    for t in 0 ..< g {
                        acc += UnsafeRawPointer(x + (r + t) * ld + j).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    let sp = UnsafeMutableRawPointer(s + j)
                    let old = sp.loadUnaligned(as: SIMD8<Double>.self)
                    sp.storeBytes(of: old + SIMD8<Double>(acc), as: SIMD8<Double>.self)
                    j += chunk
                }
                while j < j1 {
                    var acc: Float = 0
                    for t in 0 ..< g { acc += x[(r + t) * ld + j] }
                    s[j] += Double(acc)
                    j += 1
                }
                r += g
            }
        }
    }

    /// Σ_i x[i] in Double (a single long vector; sequential, Float partial sums of 8 lanes x 64).
    package static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            var acc = SIMD8<Float>()
            let end = min(n, i + 512) / 8 * 8
            while i < end {
                acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                i += 8
            }
            total += SIMD8<Double>(acc).sum()
        }
        while i < n { total += Double(x[i]); i += 1 }
        return total
    }
}
