/// Token embedding lookup and its scatter-add backward.
public enum Embedding {
    /// out[t, :] = table[ids[t], :].
    ///
    /// Shapes: `ids` is (tokens) Int32; `table` is (vocab, channels) row-major; `out` is
    /// (tokens, channels). Every id must be in 0..<vocab (checked: a bad id traps with its
    /// position, never reads out of bounds). Contract: overwrites `out`. Parallel over tokens.
    /// Cost: 4·tokens·channels bytes read and written.
    public static func forward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                               table: UnsafePointer<Float>, tokens: Int, vocab: Int, channels: Int,
                               workers: Int? = nil) {
        precondition(tokens >= 0 && vocab >= 1 && channels >= 1, "Embedding.forward: bad shape")
        for t in 0 ..< tokens {
            precondition(ids[t] >= 0 && Int(ids[t]) < vocab, "Embedding.forward: id \(ids[t]) of token \(t) outside 0..<\(vocab)")
        }
        let C = channels
        Parallel.run(workers: workers, maxUseful: max(1, tokens * C / 8192)) { ith, nth in
            for t in Parallel.range(ith, of: nth, count: tokens) {
                (out + t * C).update(from: table + Int(ids[t]) * C, count: C)
            }
        }
    }

    /// dtable[ids[t], :] += dout[t, :] for every token t.
    ///
    /// Shapes as `forward`. Contract: ACCUMULATES into `dtable`. Deterministic: workers own
    /// disjoint vocabulary ranges and each scans the tokens in order, so every row of `dtable`
    /// receives its contributions in token order whatever the worker count (bitwise identical).
    /// Ids are checked as in `forward`.
    /// Cost: tokens·channels adds; each worker reads all ids.
    public static func backward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                ids: UnsafePointer<Int32>, tokens: Int, vocab: Int, channels: Int,
                                workers: Int? = nil) {
        precondition(tokens >= 0 && vocab >= 1 && channels >= 1, "Embedding.backward: bad shape")
        for t in 0 ..< tokens {
            precondition(ids[t] >= 0 && Int(ids[t]) < vocab, "Embedding.backward: id \(ids[t]) of token \(t) outside 0..<\(vocab)")
        }
        let C = channels
        Parallel.run(workers: workers, maxUseful: min(vocab, max(1, tokens * C / 8192))) { ith, nth in
            let owned = Parallel.range(ith, of: nth, count: vocab)
            for t in 0 ..< tokens {
                let id = Int(ids[t])
                guard owned.contains(id) else { continue }
                let g = dout + t * C, d = dtable + id * C
                var c = 0
                while c + vLanes <= C { vstore(vload(d, c) + vload(g, c), d, c); c += vLanes }
                while c < C { d[c] += g[c]; c += 1 }
            }
        }
    }
}

/// Residual connection: out = a + b (its backward passes dout unchanged to both inputs, so
/// the engine accumulates dout into both gradient buffers with `add`).
public enum Residual {
    /// out[i] = a[i] + b[i] for i < count.
    /// Contract: overwrites `out`; `out` may alias `a` or `b` (x += y is `add(out: x, x, y)`).
    /// Parallel over ranges; bitwise identical for any `workers`. Cost: count FLOPs, 12·count bytes.
    public static func add(out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           count: Int, workers: Int? = nil) {
        precondition(count >= 0, "Residual.add: negative count")
        let blocks = count / vLanes
        Parallel.run(workers: workers, maxUseful: max(1, count / 32768)) { ith, nth in
            for k in Parallel.range(ith, of: nth, count: blocks) {
                let i = k * vLanes
                vstore(vload(a, i) + vload(b, i), out, i)
            }
        }
        for i in blocks * vLanes ..< count { out[i] = a[i] + b[i] }
    }
}
