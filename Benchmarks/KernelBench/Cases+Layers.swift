import Foundation
import Kernels

// Layer kernels at SmolLM2-135M shapes (C = 576, F = 1536, H = 9, D = 64, V = 49152) for a batch of
// B·T = 1024 tokens, plus the fused cross-entropy against the GEMM of the same shape, and the
// decode-time quantized GEMV measured cold (weights rotate through copies larger than the L3).

/// Max |a − b| / (|b| + floor) over the first `count` elements.
private func maxRelative(_ a: UnsafePointer<Float>, _ b: [Double], count: Int, floor: Double = 1e-3) -> Double {
    var worst = 0.0
    for i in 0 ..< count { worst = max(worst, abs(Double(a[i]) - b[i]) / (abs(b[i]) + floor)) }
    return worst
}

private func rmsnormCases(rows: Int, C: Int) -> [BenchCase] {
    let fwd = BenchCase(name: "rmsnorm", params: [("rows", .int(rows)), ("channels", .int(C))],
                        flops: 4 * Double(rows * C), bytes: 4 * Double(2 * rows * C + C + rows), bandwidthBound: true) { threads in
        let x = Buffer(rows * C) { noise($0, 10) }, w = Buffer(C) { 1 + 0.1 * noise($0, 11) }
        let out = Buffer(rows * C), rstd = Buffer(rows)
        let run = { RMSNorm.forward(out: out.p, rstd: rstd.p, inp: x.p, weight: w.p, rows: rows, channels: C, eps: 1e-5, workers: threads) }
        run()
        let xs = (0 ..< C).map { Double(x.p[$0]) }, ws = (0 ..< C).map { Double(w.p[$0]) }
        let ref = RMSNorm.forwardReference(xs, ws, rows: 1, channels: C, eps: 1e-5)
        return (maxRelative(out.p, ref, count: C) < 1e-4, { run(); blackHole(out) })
    }
    let bwd = BenchCase(name: "rmsnorm-backward", params: [("rows", .int(rows)), ("channels", .int(C))],
                        flops: 9 * Double(rows * C), bytes: 4 * Double(4 * rows * C), bandwidthBound: true) { threads in
        let x = Buffer(rows * C) { noise($0, 12) }, w = Buffer(C) { 1 + 0.1 * noise($0, 13) }, g = Buffer(rows * C) { noise($0, 14) }
        let out = Buffer(rows * C), rstd = Buffer(rows), dx = Buffer(rows * C), dw = Buffer(C)
        RMSNorm.forward(out: out.p, rstd: rstd.p, inp: x.p, weight: w.p, rows: rows, channels: C, eps: 1e-5, workers: threads)
        let run = {
            RMSNorm.backward(dinp: dx.p, dweight: dw.p, dout: g.p, inp: x.p, weight: w.p, rstd: rstd.p, rows: rows, channels: C, workers: threads)
        }
        run()
        return (dx.p[0].isFinite && dw.p[C - 1].isFinite, { run(); blackHole(dx) })
    }
    return [fwd, bwd]
}

private func ropeCase(rows: Int, heads: Int, D: Int, layout: RoPE.Layout) -> BenchCase {
    let name = layout == .adjacentPairs ? "adjacent" : "rotate-half"
    return BenchCase(name: "rope", params: [("rows", .int(rows)), ("heads", .int(heads)), ("headDim", .int(D)), ("layout", .string(name))],
                     flops: 3 * Double(rows * heads * D), bytes: 8 * Double(rows * heads * D), bandwidthBound: true) { threads in
        let x = Buffer(rows * heads * D) { noise($0, 20) }, out = Buffer(rows * heads * D)
        let positions = (0 ..< rows).map { Int32($0) }
        let (c, s) = RoPE.table(positions: rows, rotaryDim: D, base: 100_000)
        let run = {
            RoPE.forward(out: out.p, inp: x.p, positions: positions, rows: rows, heads: heads, headDim: D, rotaryDim: D,
                         layout: layout, cos: c, sin: s, tablePositions: rows, workers: threads)
        }
        run()
        let t = rows - 1, n = heads * D
        let xs = (0 ..< n).map { Double(x.p[t * n + $0]) }
        let ref = RoPE.forwardReference(xs, positions: [Int32(t)], rows: 1, heads: heads, headDim: D, rotaryDim: D,
                                        base: 100_000, layout: layout)
        return (maxRelative(out.p + t * n, ref, count: n) < 1e-4, { run(); blackHole(out) })
    }
}

private func swigluCases(count: Int) -> [BenchCase] {
    let fwd = BenchCase(name: "swiglu", params: [("count", .int(count))], flops: 6 * Double(count), bytes: 12 * Double(count),
                        bandwidthBound: true) { threads in
        let g = Buffer(count) { 4 * noise($0, 30) }, u = Buffer(count) { noise($0, 31) }, out = Buffer(count)
        let run = { SwiGLU.forward(out: out.p, gate: g.p, up: u.p, count: count, workers: threads) }
        run()
        let ref = SwiGLU.forwardReference(gate: (0 ..< 64).map { Double(g.p[$0]) }, up: (0 ..< 64).map { Double(u.p[$0]) })
        return (maxRelative(out.p, ref, count: 64) < 1e-5, { run(); blackHole(out) })
    }
    let bwd = BenchCase(name: "swiglu-backward", params: [("count", .int(count))], flops: 12 * Double(count), bytes: 28 * Double(count),
                        bandwidthBound: true) { threads in
        let g = Buffer(count) { 4 * noise($0, 32) }, u = Buffer(count) { noise($0, 33) }, d = Buffer(count) { noise($0, 34) }
        let dg = Buffer(count), du = Buffer(count)
        let run = { SwiGLU.backward(dgate: dg.p, dup: du.p, dout: d.p, gate: g.p, up: u.p, count: count, workers: threads) }
        run()
        return (dg.p[0].isFinite && du.p[count - 1].isFinite, { run(); blackHole(dg) })
    }
    return [fwd, bwd]
}

private func softmaxCase(rows: Int, columns: Int) -> BenchCase {
    BenchCase(name: "softmax", params: [("rows", .int(rows)), ("columns", .int(columns))],
              flops: 4 * Double(rows * columns), bytes: 8 * Double(rows * columns), bandwidthBound: true) { threads in
        let x = Buffer(rows * columns) { 8 * noise($0, 40) }, out = Buffer(rows * columns)
        let run = { Softmax.forward(out: out.p, inp: x.p, rows: rows, columns: columns, workers: threads) }
        run()
        let ref = Softmax.forwardReference((0 ..< columns).map { Double(x.p[$0]) }, rows: 1, columns: columns)
        return (maxRelative(out.p, ref, count: columns, floor: 1e-6) < 1e-5, { run(); blackHole(out) })
    }
}

/// Double losses and dH rows of tokens `check` for the fused cross-entropy (weights 1).
private func crossEntropyCheck(h: Buffer, w: Buffer, targets: [Int32], N: Int, V: Int, C: Int, token t: Int) -> (Double, [Double]) {
    var logits = [Double](repeating: 0, count: V)
    for v in 0 ..< V {
        var s = 0.0
        for c in 0 ..< C { s += Double(h.p[t * C + c]) * Double(w.p[v * C + c]) }
        logits[v] = s
    }
    let m = logits.max()!
    let e = logits.map { exp($0 - m) }, sum = e.reduce(0, +)
    var dh = [Double](repeating: 0, count: C)
    for v in 0 ..< V {
        let p = e[v] / sum - (v == Int(targets[t]) ? 1 : 0)
        for c in 0 ..< C { dh[c] += p * Double(w.p[v * C + c]) }
    }
    return (m + log(sum) - logits[Int(targets[t])], dh)
}

private func crossEntropyCases(N: Int, V: Int, C: Int) -> [BenchCase] {
    let gemmFlops = 2 * Double(N) * Double(V) * Double(C)
    let params: [(String, Param)] = [("tokens", .int(N)), ("vocab", .int(V)), ("channels", .int(C))]
    // The GEMM alone on the same shape (logits = H·Wᵀ written out in full): the yardstick.
    let gemm = BenchCase(name: "cross-entropy-logits-sgemm", params: params, flops: gemmFlops,
                         bytes: 4 * Double(N * C + V * C + N * V)) { threads in
        let h = Buffer(N * C) { noise($0, 50) }, w = Buffer(V * C) { 0.2 * noise($0, 51) }, z = Buffer(N * V)
        let run = { GEMM.sgemm(transB: true, m: N, n: V, k: C, a: h.p, lda: C, b: w.p, ldb: C, c: z.p, ldc: V, workers: threads) }
        run()
        let ok = residualOK(transA: false, transB: true, m: min(N, 16), n: V, k: C, a: h.p, lda: C, b: w.p, ldb: C, c: z.p, ldc: V)
        return (ok, { run(); blackHole(z) })
    }
    func fused(_ mode: String, dh: Bool, dw: Bool, gemms: Double) -> BenchCase {
        BenchCase(name: "cross-entropy", params: params + [("grad", .string(mode))], flops: gemms * gemmFlops,
                  bytes: 4 * Double(N * C + V * C)) { threads in
            let h = Buffer(N * C) { noise($0, 50) }, w = Buffer(V * C) { 0.2 * noise($0, 51) }
            let targets = (0 ..< N).map { Int32(($0 * 7919) % V) }
            let losses = Buffer(N), dH = Buffer(dh ? N * C : 1), dW = Buffer(dw ? V * C : 1)
            let run = {
                CrossEntropy.forwardBackward(losses: losses.p, dhidden: dh ? dH.p : nil, dweight: dw ? dW.p : nil,
                                             hidden: h.p, weight: w.p, targets: targets, tokens: N, vocab: V, channels: C,
                                             workers: threads)
            }
            run()
            var ok = true
            for t in [0, N - 1] {
                let (loss, dref) = crossEntropyCheck(h: h, w: w, targets: targets, N: N, V: V, C: C, token: t)
                ok = ok && abs(Double(losses.p[t]) - loss) <= 1e-4 * (1 + abs(loss))
                if dh { ok = ok && maxRelative(dH.p + t * C, dref, count: C, floor: 1e-2) < 1e-3 }  // dH holds 1 call's gradient
            }
            return (ok, { run(); blackHole(losses) })
        }
    }
    return [gemm, fused("none", dh: false, dw: false, gemms: 1), fused("dhidden", dh: true, dw: false, gemms: 2),
            fused("dhidden+dweight", dh: true, dw: true, gemms: 4)]
}

private func adamwCase(count: Int) -> BenchCase {
    BenchCase(name: "adamw", params: [("count", .int(count))], flops: 14 * Double(count), bytes: 28 * Double(count),
              bandwidthBound: true) { threads in
        let p = Buffer(count) { noise($0, 60) }, g = Buffer(count) { noise($0, 61) }, m = Buffer(count), v = Buffer(count)
        let opts = AdamW.Options(learningRate: 1e-4)
        var step = 1
        AdamW.step(param: p.p, grad: g.p, m: m.p, v: v.p, count: count, step: 1, options: opts, workers: threads)
        // After one step from zero moments each parameter moves by lr·sign(g)·|g|/(|g| + eps·...) ≈ lr (plus decay).
        let expected = Double(noise(0, 60)) * (1 - 1e-4 * 0.01) - 1e-4 * (noise(0, 61) > 0 ? 1 : -1)
        let ok = abs(Double(p.p[0]) - expected) < 1e-6
        return (ok, {
            step += 1
            AdamW.step(param: p.p, grad: g.p, m: m.p, v: v.p, count: count, step: step, options: opts, workers: threads)
            blackHole(p)
        })
    }
}

/// Quantized weights of an N x K matrix as `type`, `copies` times (for cold-cache rotation).
private func quantizedCopies(_ type: GGMLType, rows N: Int, columns K: Int, copies: Int) -> [UnsafeMutableRawPointer] {
    let rb = type.rowBytes(count: K)!
    return (0 ..< copies).map { c in
        let p = UnsafeMutableRawPointer.allocate(byteCount: N * rb, alignment: 64)
        let row = Buffer(K)
        for n in 0 ..< N {
            for k in 0 ..< K { row.p[k] = noise(n * K + k, 70 + c) }
            Quantize.row(type, src: row.p, out: p + n * rb, count: K)
        }
        return p
    }
}

private func dequantCase(_ type: GGMLType, rows N: Int, columns K: Int) -> BenchCase {
    let rb = type.rowBytes(count: K)!
    return BenchCase(name: "dequant", params: [("type", .string(type.name)), ("rows", .int(N)), ("columns", .int(K))],
                     flops: 2 * Double(N * K), bytes: Double(N * rb + 4 * N * K), bandwidthBound: true) { threads in
        let w = quantizedCopies(type, rows: N, columns: K, copies: 1)[0]
        let out = Buffer(N * K)
        let run = { Dequantize.rows(type, src: w, out: out.p, rows: N, columns: K, workers: threads) }
        run()
        let one = Buffer(K)
        Dequantize.row(type, src: w + (N - 1) * rb, out: one.p, count: K)
        let ok = (0 ..< K).allSatisfy { out.p[(N - 1) * K + $0] == one.p[$0] } && abs(out.p[0] - noise(0, 70)) < 0.2
        return (ok, { run(); blackHole(out) })
    }
}

/// `layout: .quads` times the Q4_1 quad layout the engine repacks into on 512-bit builds (the
/// timed copies are repacked; the check dequantizes the GGUF rows they came from).
private func qgemvCase(_ type: GGMLType, rows N: Int, columns K: Int, layout: QuantizedGEMV.Layout = .blocks) -> BenchCase {
    let rb = type.rowBytes(count: K)!
    let layoutName = layout == .quads ? "quads" : "blocks"
    return BenchCase(name: "qgemv", params: [("type", .string(type.name)), ("n", .int(N)), ("k", .int(K)), ("layout", .string(layoutName)),
                                             ("cache", .string("cold"))],
                     flops: 2 * Double(N * K), bytes: Double(N * rb + 4 * K + 4 * N), bandwidthBound: true) { threads in
        let copies = max(2, (128 << 20) / (N * rb) + 1)
        let ws = quantizedCopies(type, rows: N, columns: K, copies: copies)
        let timed: [UnsafeRawPointer] = layout == .blocks ? ws.map { UnsafeRawPointer($0) } : ws.map { src in
            let p = UnsafeMutableRawPointer.allocate(byteCount: N * rb, alignment: 64)
            QuantizedGEMV.packQuads(src, into: p, rows: N, columns: K)
            return UnsafeRawPointer(p)
        }
        let x = Buffer(K) { noise($0, 80) }, y = Buffer(N)
        QuantizedGEMV.gemv(type, w: timed[0], x: x.p, y: y.p, rows: N, columns: K, workers: threads, layout: layout)
        // Verify a few rows against dequantize + Double dot.
        let row = Buffer(K)
        var ok = true
        for n in [0, N / 2, N - 1] {
            Dequantize.row(type, src: ws[0] + n * rb, out: row.p, count: K)
            var s = 0.0, mag = 0.0
            for k in 0 ..< K { s += Double(row.p[k]) * Double(x.p[k]); mag += abs(Double(row.p[k]) * Double(x.p[k])) }
            ok = ok && abs(Double(y.p[n]) - s) <= 4 * Double(K + 64) * Double(Float.ulpOfOne) * (mag + 1)
        }
        var next = 0
        return (ok, {
            QuantizedGEMV.gemv(type, w: timed[next], x: x.p, y: y.p, rows: N, columns: K, workers: threads, layout: layout)
            next = (next + 1) % copies
            blackHole(y)
        })
    }
}

func layersCases(quick: Bool) -> [BenchCase] {
    if quick {
        return rmsnormCases(rows: 8, C: 67) + [ropeCase(rows: 8, heads: 3, D: 64, layout: .adjacentPairs),
                                               ropeCase(rows: 8, heads: 3, D: 64, layout: .rotateHalf)]
            + swigluCases(count: 1000) + [softmaxCase(rows: 8, columns: 77)] + crossEntropyCases(N: 16, V: 300, C: 24)
            + [adamwCase(count: 1000), dequantCase(.q8_0, rows: 16, columns: 64), dequantCase(.q4_1, rows: 16, columns: 64),
               qgemvCase(.q8_0, rows: 100, columns: 64), qgemvCase(.q4_1, rows: 100, columns: 64),
               qgemvCase(.q4_1, rows: 100, columns: 160, layout: .quads)]
    }
    let tokens = 1024, C = 576, F = 1536, V = 49152
    return rmsnormCases(rows: tokens, C: C)
        + [ropeCase(rows: tokens, heads: 9, D: 64, layout: .adjacentPairs), ropeCase(rows: tokens, heads: 9, D: 64, layout: .rotateHalf)]
        + swigluCases(count: tokens * F)
        + [softmaxCase(rows: tokens, columns: tokens)]
        + crossEntropyCases(N: tokens, V: V, C: C)
        + [adamwCase(count: 1 << 22)]
        + [dequantCase(.q8_0, rows: V, columns: C), dequantCase(.q4_1, rows: V, columns: C)]
        + [qgemvCase(.q8_0, rows: V, columns: C), qgemvCase(.q4_1, rows: V, columns: C), qgemvCase(.q4_1, rows: V, columns: C, layout: .quads)]
}
