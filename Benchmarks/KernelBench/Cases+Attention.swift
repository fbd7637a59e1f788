import Foundation
import Kernels

/// Fused-qkv inputs of one attention benchmark: q, k, v are views into (B·T, (H + 2·Hkv)·D) rows.
private final class AttentionInputs {
    let batch, T, heads, kvHeads, D, ld: Int
    let qkv, out, lse, dout, dqkv: Buffer
    let starts: [Int]
    init(batch: Int, T: Int, heads: Int, kvHeads: Int, D: Int) {
        self.batch = batch; self.T = T; self.heads = heads; self.kvHeads = kvHeads; self.D = D
        ld = (heads + 2 * kvHeads) * D
        qkv = Buffer(batch * T * ld) { noise($0, 31) }
        out = Buffer(batch * T * heads * D)
        lse = Buffer(heads * batch * T)
        dout = Buffer(batch * T * heads * D) { noise($0, 32) }
        dqkv = Buffer(batch * T * ld)
        starts = (0 ... batch).map { $0 * T }
    }
    var q: UnsafePointer<Float> { UnsafePointer(qkv.p) }
    var k: UnsafePointer<Float> { UnsafePointer(qkv.p + heads * D) }
    var v: UnsafePointer<Float> { UnsafePointer(qkv.p + (heads + kvHeads) * D) }

    func forward(causal: Bool, threads: Int) {
        Attention.forward(out: out.p, ldo: heads * D, lse: lse.p, q: q, ldq: ld, k: k, ldk: ld, v: v, ldv: ld,
                          sequenceStarts: starts, heads: heads, kvHeads: kvHeads, headDim: D, causal: causal, workers: threads)
    }

    func backward(causal: Bool, threads: Int) {
        Attention.backward(dq: dqkv.p, lddq: ld, dk: dqkv.p + heads * D, lddk: ld, dv: dqkv.p + (heads + kvHeads) * D, lddv: ld,
                           dout: dout.p, lddout: heads * D, out: out.p, ldo: heads * D, lse: lse.p,
                           q: q, ldq: ld, k: k, ldk: ld, v: v, ldv: ld, sequenceStarts: starts,
                           heads: heads, kvHeads: kvHeads, headDim: D, causal: causal, workers: threads)
    }

    /// Exact (Double) probabilities of query row `t` of sequence `b`, head `h`, and its output.
    func referenceRow(b: Int, t: Int, h: Int, causal: Bool) -> (p: [Double], out: [Double], lse: Double) {
        let g = h / (heads / kvHeads), scale = 1 / Double(D).squareRoot(), row0 = b * T
        let last = causal ? t : T - 1
        var s = [Double](repeating: 0, count: last + 1)
        for j in 0 ... last {
            var dot = 0.0
            for d in 0 ..< D { dot += Double(qkv.p[(row0 + t) * ld + h * D + d]) * Double(qkv.p[(row0 + j) * ld + (heads + g) * D + d]) }
            s[j] = dot * scale
        }
        let m = s.max()!
        var sum = 0.0
        for j in 0 ... last { s[j] = exp(s[j] - m); sum += s[j] }
        var o = [Double](repeating: 0, count: D)
        for j in 0 ... last {
            s[j] /= sum
            for d in 0 ..< D { o[d] += s[j] * Double(qkv.p[(row0 + j) * ld + (heads + kvHeads + g) * D + d]) }
        }
        return (s, o, m + log(sum))
    }

    /// Sampled rows of out and lse against `referenceRow`.
    func forwardOK(causal: Bool) -> Bool {
        let tol = 1e-4
        for (b, t, h) in [(0, 0, 0), (0, T - 1, heads - 1), (batch - 1, T / 2 + 1, heads / 2), (0, min(T - 1, 65), 1 % heads)] {
            let r = referenceRow(b: b, t: t, h: h, causal: causal)
            for d in 0 ..< D where !(abs(Double(out.p[(b * T + t) * heads * D + h * D + d]) - r.out[d]) <= tol) { return false }
            if !(abs(Double(lse.p[h * batch * T + b * T + t]) - r.lse) <= tol * (1 + abs(r.lse))) { return false }
        }
        return true
    }

    /// Sampled dq rows exactly; dk and dv through identities of softmax: per kv head and column,
    /// Σ_j dV_j = Σ_{i, h in group} dO_i,h (probability rows sum to 1) and Σ_j dK_j = 0
    /// (Σ_j dS_ij = 0). `dqkv` must hold one backward call's result (it was zero before).
    func backwardOK(causal: Bool) -> Bool {
        let scale = 1 / Double(D).squareRoot(), G = heads / kvHeads
        for (b, t, h) in [(0, T - 1, 0), (batch - 1, T / 3, heads - 1)] {
            let r = referenceRow(b: b, t: t, h: h, causal: causal), g = h / G
            var dp = [Double](repeating: 0, count: r.p.count), delta = 0.0
            for j in 0 ..< r.p.count {
                for d in 0 ..< D { dp[j] += Double(dout.p[(b * T + t) * heads * D + h * D + d]) * Double(qkv.p[(b * T + j) * ld + (heads + kvHeads + g) * D + d]) }
                delta += r.p[j] * dp[j]
            }
            for d in 0 ..< D {
                var dq = 0.0
                for j in 0 ..< r.p.count { dq += r.p[j] * (dp[j] - delta) * scale * Double(qkv.p[(b * T + j) * ld + (heads + g) * D + d]) }
                if !(abs(Double(dqkv.p[(b * T + t) * ld + h * D + d]) - dq) <= 1e-3 * (1 + abs(dq))) { return false }
            }
        }
        for g in 0 ..< kvHeads {
            for d in 0 ..< D {
                var sumDV = 0.0, sumDO = 0.0, sumDK = 0.0, magDK = 0.0
                for row in 0 ..< batch * T {
                    sumDV += Double(dqkv.p[row * ld + (heads + kvHeads + g) * D + d])
                    sumDK += Double(dqkv.p[row * ld + (heads + g) * D + d])
                    magDK += abs(Double(dqkv.p[row * ld + (heads + g) * D + d]))
                    for h in g * G ..< (g + 1) * G { sumDO += Double(dout.p[row * heads * D + h * D + d]) }
                }
                if !(abs(sumDV - sumDO) <= 1e-3 * (1 + abs(sumDO))) || !(abs(sumDK) <= 1e-3 * (1 + magDK)) { return false }
            }
        }
        return true
    }
}

/// Forward or backward attention at (B, H/Hkv, T, D); FLOPs counted as in `Attention.forward`
/// (4·B·H·T²·D, half when causal) and backward as 2.5x forward.
func attentionCase(backward: Bool, batch: Int = 1, heads: Int, kvHeads: Int, T: Int, D: Int, causal: Bool) -> BenchCase {
    let fwd = 4 * Double(batch * heads) * Double(T) * Double(T) * Double(D) * (causal ? 0.5 : 1)
    let bytes = 4 * Double(batch * T) * Double((2 * heads + 2 * kvHeads) * D) * (backward ? 2.5 : 1)
    return BenchCase(name: backward ? "attention_backward" : "attention_forward",
                     params: [("B", .int(batch)), ("heads", .int(heads)), ("kvHeads", .int(kvHeads)), ("T", .int(T)),
                              ("D", .int(D)), ("causal", .bool(causal))],
                     flops: backward ? 2.5 * fwd : fwd, bytes: bytes) { threads in
        let x = AttentionInputs(batch: batch, T: T, heads: heads, kvHeads: kvHeads, D: D)
        x.forward(causal: causal, threads: threads)
        var ok = x.forwardOK(causal: causal)
        if backward {
            x.backward(causal: causal, threads: threads)
            ok = ok && x.backwardOK(causal: causal)
        }
        return (ok, {
            if backward { x.backward(causal: causal, threads: threads) } else { x.forward(causal: causal, threads: threads) }
            blackHole(x)
        })
    }
}

/// One new token per sequence against per-sequence KV caches of `length` rows (bandwidth-bound).
func attentionDecodeCase(batch: Int, heads: Int, kvHeads: Int, length: Int, D: Int) -> BenchCase {
    BenchCase(name: "attention_decode",
              params: [("B", .int(batch)), ("heads", .int(heads)), ("kvHeads", .int(kvHeads)), ("T", .int(length)), ("D", .int(D))],
              flops: 4 * Double(batch * heads * length * D),
              bytes: 4 * Double(batch) * Double(2 * kvHeads * length * D + 2 * heads * D), bandwidthBound: true) { threads in
        let ldkv = 2 * kvHeads * D
        let cache = Buffer(batch * length * ldkv) { noise($0, 41) }
        let q = Buffer(batch * heads * D) { noise($0, 42) }, out = Buffer(batch * heads * D)
        let lengths = [Int](repeating: length, count: batch)
        func run() {
            Attention.decode(out: out.p, ldo: heads * D, q: q.p, ldq: heads * D, keyCache: cache.p, valueCache: cache.p + kvHeads * D,
                             ldkv: ldkv, cacheStride: length * ldkv, lengths: lengths, heads: heads, kvHeads: kvHeads,
                             headDim: D, workers: threads)
        }
        run()
        var ok = true
        let scale = 1 / Double(D).squareRoot()
        for (b, h) in [(0, 0), (batch - 1, heads - 1)] {
            let g = h / (heads / kvHeads), base = b * length * ldkv
            var s = [Double](repeating: 0, count: length)
            for j in 0 ..< length {
                for d in 0 ..< D { s[j] += Double(q.p[b * heads * D + h * D + d]) * Double(cache.p[base + j * ldkv + g * D + d]) }
                s[j] *= scale
            }
            let m = s.max()!
            let e = s.map { exp($0 - m) }, sum = e.reduce(0, +)
            for d in 0 ..< D {
                var o = 0.0
                for j in 0 ..< length { o += e[j] / sum * Double(cache.p[base + j * ldkv + (kvHeads + g) * D + d]) }
                if !(abs(Double(out.p[b * heads * D + h * D + d]) - o) <= 1e-4) { ok = false }
            }
        }
        return (ok, { run(); blackHole(out) })
    }
}

func attentionCases(quick: Bool) -> [BenchCase] {
    if quick {
        return [attentionCase(backward: false, heads: 3, kvHeads: 1, T: 70, D: 16, causal: true),
                attentionCase(backward: true, batch: 2, heads: 2, kvHeads: 1, T: 33, D: 8, causal: false),
                attentionDecodeCase(batch: 2, heads: 4, kvHeads: 2, length: 50, D: 16)]
    }
    var cases: [BenchCase] = []
    for backward in [false, true] {
        for causal in [true, false] {
            cases.append(attentionCase(backward: backward, heads: 9, kvHeads: 3, T: 512, D: 64, causal: causal))
            cases.append(attentionCase(backward: backward, heads: 32, kvHeads: 8, T: 2048, D: 128, causal: causal))
        }
    }
    cases += [attentionDecodeCase(batch: 1, heads: 9, kvHeads: 3, length: 512, D: 64),
              attentionDecodeCase(batch: 8, heads: 9, kvHeads: 3, length: 512, D: 64),
              attentionDecodeCase(batch: 1, heads: 32, kvHeads: 8, length: 2048, D: 128),
              attentionDecodeCase(batch: 4, heads: 32, kvHeads: 8, length: 4096, D: 128)]
    return cases
}
