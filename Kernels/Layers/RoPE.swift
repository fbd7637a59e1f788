import Foundation

/// Rotary position embedding (Su et al. 2021) on per-head vectors of query/key rows.
///
/// Pair i of a head (0 <= i < rotaryDim/2) is rotated by θ = pos · base^(−2i/rotaryDim):
///   (a, b) -> (a·cos θ − b·sin θ, a·sin θ + b·cos θ).
/// Which two elements form pair i depends on the checkpoint's layout:
///   - `.adjacentPairs`: (2i, 2i+1): GGUF / llama.cpp (`LLAMA_ROPE_TYPE_NORM`), whose converter
///     permuted the Q/K weight rows of Hugging Face Llama checkpoints to this layout;
///   - `.rotateHalf`: (i, i + rotaryDim/2): Hugging Face `rotate_half` (and llama.cpp NEOX).
/// Elements at and beyond `rotaryDim` pass through unchanged.
public enum RoPE {
    public enum Layout: Sendable {
        case adjacentPairs
        case rotateHalf
    }

    /// Cos/sin table for positions 0..<positions: `cos[p·(rotaryDim/2) + i] = cos(p·base^(−2i/rotaryDim))`,
    /// likewise `sin`. Angles are computed in Double and rounded once.
    /// Shapes: both arrays are (positions, rotaryDim/2). Cost: positions·rotaryDim/2 cos+sin.
    public static func table(positions: Int, rotaryDim: Int, base: Double) -> (cos: [Float], sin: [Float]) {
        precondition(positions >= 0 && rotaryDim >= 2 && rotaryDim % 2 == 0, "RoPE.table: bad shape")
        precondition(base > 0, "RoPE.table: base must be positive")
        let half = rotaryDim / 2
        var c = [Float](repeating: 0, count: positions * half), s = c
        for i in 0 ..< half {
            let inv = Foundation.pow(base, -2 * Double(i) / Double(rotaryDim))
            for p in 0 ..< positions {
                let theta = Double(p) * inv
                c[p * half + i] = Float(Foundation.cos(theta))
                s[p * half + i] = Float(Foundation.sin(theta))
            }
        }
        return (c, s)
    }

    /// out[t, h, :] = R(positions[t]) · inp[t, h, :] for every token t and head h.
    ///
    /// Shapes: `inp`, `out` are (rows, heads, headDim), rows `ld` floats apart (default heads·headDim,
    /// larger for the query and key heads of a fused qkv row);
    /// `positions` is (rows) Int32, each in 0..<tablePositions, so ragged and packed batches
    /// simply pass each token's own position; `cos`, `sin` are (tablePositions, rotaryDim/2)
    /// from `table`. `rotaryDim` is even and <= headDim.
    /// Contract: overwrites `out`; `out` may alias `inp` (in-place is the usual call). Parallel
    /// over rows; bitwise identical for any `workers`. Nothing is saved for backward (it needs
    /// only the positions).
    /// Cost: 6 FLOPs per rotated pair; reads and writes rows·heads·headDim floats.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, ld: Int? = nil,
                               positions: UnsafePointer<Int32>, rows: Int, heads: Int, headDim: Int,
                               rotaryDim: Int, layout: Layout, cos: UnsafePointer<Float>,
                               sin: UnsafePointer<Float>, tablePositions: Int, workers: Int? = nil) {
        apply(out: out, inp: inp, ld: ld, positions: positions, rows: rows, heads: heads, headDim: headDim,
              rotaryDim: rotaryDim, layout: layout, cos: cos, sin: sin, tablePositions: tablePositions,
              sign: 1, accumulate: false, workers: workers, name: "RoPE.forward")
    }

    /// dinp[t, h, :] += R(positions[t])ᵀ · dout[t, h, :] (the inverse rotation, −θ).
    ///
    /// Shapes as `forward`. Contract: ACCUMULATES into `dinp` (pass-through dims too);
    /// `dinp` must not alias `dout`. Parallel over rows; bitwise identical for any `workers`.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ld: Int? = nil,
                                positions: UnsafePointer<Int32>, rows: Int, heads: Int, headDim: Int,
                                rotaryDim: Int, layout: Layout, cos: UnsafePointer<Float>,
                                sin: UnsafePointer<Float>, tablePositions: Int, workers: Int? = nil) {
        apply(out: dinp, inp: dout, ld: ld, positions: positions, rows: rows, heads: heads, headDim: headDim,
              rotaryDim: rotaryDim, layout: layout, cos: cos, sin: sin, tablePositions: tablePositions,
              sign: -1, accumulate: true, workers: workers, name: "RoPE.backward")
    }

    private static func apply(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, ld: Int?,
                              positions: UnsafePointer<Int32>, rows: Int, heads: Int, headDim: Int,
                              rotaryDim: Int, layout: Layout, cos: UnsafePointer<Float>,
                              sin: UnsafePointer<Float>, tablePositions: Int, sign: Float,
                              accumulate: Bool, workers: Int?, name: String) {
        precondition(rows >= 0 && heads >= 1 && headDim >= 2, "\(name): bad shape")
        precondition(rotaryDim >= 2 && rotaryDim % 2 == 0 && rotaryDim <= headDim,
                     "\(name): rotaryDim \(rotaryDim) must be even and <= headDim \(headDim)")
        for t in 0 ..< rows {
            precondition(positions[t] >= 0 && Int(positions[t]) < tablePositions,
                         "\(name): position \(positions[t]) of row \(t) outside the table (0..<\(tablePositions))")
        }
        let D = headDim, half = rotaryDim / 2, rowStride = ld ?? heads * headDim
        precondition(rowStride >= heads * headDim, "\(name): row stride \(rowStride) < heads·headDim")
        Parallel.run(workers: workers, maxUseful: max(1, rows * rowStride / 4096)) { ith, nth in
            for t in Parallel.range(ith, of: nth, count: rows) {
                let cr = cos + Int(positions[t]) * half, sr = sin + Int(positions[t]) * half
                for h in 0 ..< heads {
                    let x = inp + t * rowStride + h * D, y = out + t * rowStride + h * D
                    switch layout {
                    case .adjacentPairs:
                        for i in 0 ..< half {
                            let a = x[2 * i], b = x[2 * i + 1], c = cr[i], s = sign * sr[i]
                            let ya = a * c - b * s, yb = a * s + b * c
                            if accumulate { y[2 * i] += ya; y[2 * i + 1] += yb } else { y[2 * i] = ya; y[2 * i + 1] = yb }
                        }
                    case .rotateHalf:
                        var i = 0
                        let sv = VFloat(repeating: sign)
                        while i + vLanes <= half {
                            let a = vload(x, i), b = vload(x, i + half), c = vload(cr, i), s = sv * vload(sr, i)
                            let ya = a * c - b * s, yb = a * s + b * c
                            if accumulate {
                                vstore(vload(y, i) + ya, y, i); vstore(vload(y, i + half) + yb, y, i + half)
                            } else {
                                vstore(ya, y, i); vstore(yb, y, i + half)
                            }
                            i += vLanes
                        }
                        while i < half {
                            let a = x[i], b = x[i + half], c = cr[i], s = sign * sr[i]
                            let ya = a * c - b * s, yb = a * s + b * c
                            if accumulate { y[i] += ya; y[i + half] += yb } else { y[i] = ya; y[i + half] = yb }
                            i += 1
                        }
                    }
                    if rotaryDim < D {
                        if accumulate {
                            for j in rotaryDim ..< D { y[j] += x[j] }
                        } else if UnsafePointer(y) != x {
                            for j in rotaryDim ..< D { y[j] = x[j] }
                        }
                    }
                }
            }
        }
    }
}
