import Foundation
import Kernels

extension LlamaReference {
    /// Trainable values in Double, laid out exactly as `LoRAAdapter.buffer` and `ProbeSet.buffer`,
    /// so finite differences can perturb any of them.
    package struct Trainables {
        package var adapter: LoRAAdapter?
        package var lora: [Double]
        package var probes: ProbeSet?
        package var probeValues: [Double]
        /// Dropout seed when dropout is active (nil: no dropout, evaluation mode).
        package var dropoutSeed: UInt64?

        package init(adapter: LoRAAdapter?, probes: ProbeSet?, dropoutSeed: UInt64? = nil) {
            self.adapter = adapter
            lora = adapter.map { Array($0.buffer.values).map(Double.init) } ?? []
            self.probes = probes
            probeValues = probes.map { Array($0.buffer.values).map(Double.init) } ?? []
            self.dropoutSeed = dropoutSeed
        }
    }

    /// Logits (T x V) of one sequence under base weights + LoRA + probes, all in Double.
    /// `rowOffset` is the sequence's first row in the packed batch (dropout masks are indexed by it).
    package static func forward(_ w: LlamaWeights, tokens: [Int], trainables tr: Trainables, rowOffset: Int = 0) -> [Double] {
        states(w, tokens: tokens, trainables: tr, rowOffset: rowOffset).logits
    }

    /// Residual stream after the embedding (index 0) and after every block, each T x C, and the
    /// logits (T x V), under base weights + LoRA + probes, all in Double.
    package static func states(_ w: LlamaWeights, tokens: [Int], trainables tr: Trainables,
                               rowOffset: Int = 0) -> (hidden: [[Double]], logits: [Double]) {
        let c = w.config, C = c.hiddenSize, T = tokens.count, D = c.headDim
        let H = c.heads, group = H / c.kvHeads, F = c.ffnSize
        let ad = tr.adapter
        func linear(_ x: [Double], _ W: UnsafeMutablePointer<Float>, rows: Int, inDim: Int, rowOffset: Int = 0) -> [Double] {
            var y = [Double](repeating: 0, count: T * rows)
            for t in 0 ..< T {
                for o in 0 ..< rows {
                    var s = 0.0
                    let wr = W + (rowOffset + o) * inDim
                    for i in 0 ..< inDim { s += x[t * inDim + i] * Double(wr[i]) }
                    y[t * rows + o] = s
                }
            }
            return y
        }
        // y += scale·(dropout(x)·Aᵀ)·Bᵀ
        func lora(_ l: Int, _ target: LoRATarget, _ x: [Double], _ y: inout [Double]) {
            guard let ad, let s = ad.slot(l, target) else { return }
            let r = ad.config.rank, scale = Double(ad.scale), p = ad.config.dropout
            for t in 0 ..< T {
                var xd = Array(x[(t * s.inDim) ..< ((t + 1) * s.inDim)])
                if let seed = tr.dropoutSeed, p > 0 {
                    let th = DropoutMask.threshold(p), stream = DropoutMask.stream(layer: l, target: target)
                    for i in 0 ..< s.inDim {
                        let keep = DropoutMask.keep(seed: seed, stream: stream, index: (rowOffset + t) * s.inDim + i, threshold: th)
                        xd[i] = keep ? xd[i] / (1 - Double(p)) : 0
                    }
                }
                var u = [Double](repeating: 0, count: r)
                for j in 0 ..< r {
                    var acc = 0.0
                    for i in 0 ..< s.inDim { acc += xd[i] * tr.lora[s.a + j * s.inDim + i] }
                    u[j] = acc
                }
                for o in 0 ..< s.outDim {
                    var acc = 0.0
                    for j in 0 ..< r { acc += u[j] * tr.lora[s.b + o * r + j] }
                    y[t * s.outDim + o] += scale * acc
                }
            }
        }
        func norm(_ x: [Double], _ base: UnsafeMutablePointer<Float>, _ offset: Int?) -> [Double] {
            var y = x
            for t in 0 ..< T {
                var ss = 0.0
                for i in 0 ..< C { ss += x[t * C + i] * x[t * C + i] }
                let r = 1 / (ss / Double(C) + Double(c.rmsEps)).squareRoot()
                for i in 0 ..< C { y[t * C + i] = x[t * C + i] * r * (offset.map { tr.lora[$0 + i] } ?? Double(base[i])) }
            }
            return y
        }
        func rope(_ x: inout [Double], heads: Int) {
            for t in 0 ..< T {
                for h in 0 ..< heads {
                    for i in 0 ..< c.ropeDim / 2 {
                        let theta = Double(t) * pow(Double(c.ropeBase), -2 * Double(i) / Double(c.ropeDim))
                        let j = t * heads * D + h * D + 2 * i
                        let a = x[j], b = x[j + 1]
                        x[j] = a * cos(theta) - b * sin(theta)
                        x[j + 1] = a * sin(theta) + b * cos(theta)
                    }
                }
            }
        }
        func probe(_ block: Int, _ x: inout [Double]) {
            guard let pr = tr.probes, let i = pr.index(ofBlock: block) else { return }
            for t in 0 ..< T { for ch in 0 ..< C { x[t * C + ch] += tr.probeValues[i * C + ch] } }
        }
        var x = [Double](repeating: 0, count: T * C)
        for t in 0 ..< T { for i in 0 ..< C { x[t * C + i] = Double(w.embedding[tokens[t] * C + i]) } }
        probe(0, &x)
        var hidden = [x]
        for l in 0 ..< c.layers {
            let xn = norm(x, w.attnNorm(l), ad?.attnNormOffsets?[l])
            var q = linear(xn, w.qkv(l), rows: c.qDim, inDim: C)
            var k = linear(xn, w.qkv(l), rows: c.kvDim, inDim: C, rowOffset: c.qDim)
            var v = linear(xn, w.qkv(l), rows: c.kvDim, inDim: C, rowOffset: c.qDim + c.kvDim)
            lora(l, .q, xn, &q); lora(l, .k, xn, &k); lora(l, .v, xn, &v)
            rope(&q, heads: H)
            rope(&k, heads: c.kvHeads)
            var att = [Double](repeating: 0, count: T * c.qDim)
            let scale = 1 / Double(D).squareRoot()
            for h in 0 ..< H {
                let kh = h / group
                for t in 0 ..< T {
                    var scores = [Double](repeating: 0, count: t + 1)
                    for s in 0 ... t {
                        var dot = 0.0
                        for d in 0 ..< D { dot += q[t * c.qDim + h * D + d] * k[s * c.kvDim + kh * D + d] }
                        scores[s] = dot * scale
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for d in 0 ..< D {
                        var acc = 0.0
                        for s in 0 ... t { acc += e[s] / z * v[s * c.kvDim + kh * D + d] }
                        att[t * c.qDim + h * D + d] = acc
                    }
                }
            }
            var o = linear(att, w.wo(l), rows: C, inDim: c.qDim)
            lora(l, .o, att, &o)
            for i in 0 ..< T * C { x[i] += o[i] }
            let xn2 = norm(x, w.ffnNorm(l), ad?.ffnNormOffsets?[l])
            var gate = linear(xn2, w.gateUp(l), rows: F, inDim: C)
            var up = linear(xn2, w.gateUp(l), rows: F, inDim: C, rowOffset: F)
            lora(l, .gate, xn2, &gate); lora(l, .up, xn2, &up)
            var act = [Double](repeating: 0, count: T * F)
            for i in 0 ..< T * F { act[i] = gate[i] / (1 + exp(-gate[i])) * up[i] }
            var down = linear(act, w.down(l), rows: C, inDim: F)
            lora(l, .down, act, &down)
            for i in 0 ..< T * C { x[i] += down[i] }
            probe(l + 1, &x)
            hidden.append(x)
        }
        let xf = norm(x, w.outputNorm, ad?.outputNormOffset)
        return (hidden, linear(xf, w.output, rows: c.vocabSize, inDim: C))
    }

    /// Per-token NLL (N, 0 where no target) of a packed batch, in Double.
    package static func losses(_ w: LlamaWeights, batch: TrainingBatch, trainables: Trainables) -> [Double] {
        let V = w.config.vocabSize
        var out = [Double](repeating: 0, count: batch.tokenCount)
        for (s, seq) in batch.sequences.enumerated() {
            let r0 = batch.sequenceStarts[s]
            let logits = forward(w, tokens: seq.map(Int.init), trainables: trainables, rowOffset: r0)
            for t in 0 ..< seq.count {
                let y = batch.targets[r0 + t]
                if y == CrossEntropy.defaultIgnoreIndex { continue }
                let row = logits[(t * V) ..< ((t + 1) * V)]
                let m = row.max()!
                let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
                out[r0 + t] = lse - logits[t * V + Int(y)]
            }
        }
        return out
    }

    /// Σ_t weights[t]·nll[t] in Double.
    package static func weightedLoss(_ w: LlamaWeights, batch: TrainingBatch, tokenWeights: [Double],
                                     trainables: Trainables) -> Double {
        zip(losses(w, batch: batch, trainables: trainables), tokenWeights).reduce(0) { $0 + $1.0 * $1.1 }
    }
}
