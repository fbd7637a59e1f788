import Foundation
import Kernels

/// Cross-build agreement: every CPU variant computes the same seeded GEMM and attention problems;
/// `--dump FILE` writes one build's outputs, `--against FILE` recomputes them in this build and
/// checks each element within the kernels' error bounds (two builds each within the bound of the
/// exact result differ by at most twice it). Used by the release check on portable vs best builds.
enum Agreement {
    struct Problem {
        var label: String
        var values: [Float]
        /// Allowed |this − other| per element.
        var bound: [Double]
    }

    /// Deterministic inputs in [-1, 1), identical in every build (no SIMD, no libm).
    static func inputs(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0 ..< n).map { _ in
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: s) >> 40) / Float(1 << 23)
        }
    }

    static func problems() -> [Problem] {
        let u = Double(Float.ulpOfOne) / 2
        var out: [Problem] = []
        for (m, n, k, tA, tB) in [(67, 45, 129, false, false), (67, 45, 129, true, false), (67, 45, 129, false, true),
                                  (200, 160, 300, false, true), (1, 300, 257, false, true)] {
            let a = inputs(m * k, seed: UInt64(m * 7 + k)), b = inputs(k * n, seed: UInt64(n * 13 + k))
            var c = [Float](repeating: 0, count: m * n)
            GEMM.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, a: a, lda: tA ? m : k, b: b, ldb: tB ? k : n, c: &c, ldc: n)
            var bound = [Double](repeating: 0, count: m * n)
            for i in 0 ..< m {
                for j in 0 ..< n {
                    var mag = 0.0
                    for p in 0 ..< k {
                        let av = tA ? a[p * m + i] : a[i * k + p], bv = tB ? b[j * k + p] : b[p * n + j]
                        mag += abs(Double(av) * Double(bv))
                    }
                    bound[i * n + j] = 2 * 2 * Double(k + 2) * u * mag + 1e-30
                }
            }
            out.append(Problem(label: "sgemm \(tA ? "T" : "N")\(tB ? "T" : "N") \(m)x\(n)x\(k)", values: c, bound: bound))
        }
        let heads = 4, kvHeads = 2, D = 64, starts = [0, 13, 42]
        let T = starts.last!
        let q = inputs(T * heads * D, seed: 1), k = inputs(T * kvHeads * D, seed: 2), v = inputs(T * kvHeads * D, seed: 3)
        var o = [Float](repeating: 0, count: T * heads * D), lse = [Float](repeating: 0, count: T * heads)
        o.withUnsafeMutableBufferPointer { ob in
            lse.withUnsafeMutableBufferPointer { lb in
                Attention.forward(out: ob.baseAddress!, ldo: heads * D, lse: lb.baseAddress!, q: q, ldq: heads * D, k: k, ldk: kvHeads * D,
                                  v: v, ldv: kvHeads * D, sequenceStarts: starts, heads: heads, kvHeads: kvHeads, headDim: D)
            }
        }
        // Outputs are convex combinations of V rows (|v| < 1); score errors grow with D, sums with T.
        let attnBound = 2 * 64 * Double(T + D) * u
        out.append(Problem(label: "attention T=\(T) H=\(heads)/\(kvHeads) D=\(D)", values: o,
                           bound: [Double](repeating: attnBound, count: o.count)))
        return out
    }

    static func dump(to path: String) throws {
        let doc: [String: Any] = ["isa": BuildInfo.isa,
                                  "problems": problems().map { ["label": $0.label, "values": $0.values.map(Double.init)] }]
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Compares with a dump; returns false (after printing the worst element) when any problem disagrees.
    static func check(against path: String) throws -> Bool {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let doc = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let other = doc["problems"] as? [[String: Any]] else {
            throw NSError(domain: "kernel-bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(path) is not a kernel-bench dump"])
        }
        let otherIsa = doc["isa"] as? String ?? "?"
        var ok = true
        for p in problems() {
            guard let o = other.first(where: { $0["label"] as? String == p.label }), let values = o["values"] as? [Double],
                  values.count == p.values.count else {
                print("\(p.label): missing or wrong size in \(path)"); ok = false; continue
            }
            var worst = 0.0, at = 0
            for i in 0 ..< values.count {
                let r = abs(Double(p.values[i]) - values[i]) / p.bound[i]
                if !(r <= worst) { worst = r; at = i }
            }
            let agree = worst <= 1
            ok = ok && agree
            print(String(format: "%-40@ %@ vs %@: worst |diff|/bound %.3g at %d  %@", p.label as NSString, BuildInfo.isa as NSString,
                         otherIsa as NSString, worst, at, (agree ? "agree" : "DISAGREE") as NSString))
        }
        return ok
    }
}
