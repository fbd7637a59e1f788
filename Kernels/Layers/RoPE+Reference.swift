import Foundation

extension RoPE {
    /// Double reference of `forward` with angles computed directly from the positions.
    package static func forwardReference(_ inp: [Double], positions: [Int32], rows: Int, heads: Int, headDim: Int,
                                         rotaryDim: Int, base: Double, layout: Layout) -> [Double] {
        var out = inp
        let half = rotaryDim / 2
        for t in 0 ..< rows {
            for h in 0 ..< heads {
                let o = (t * heads + h) * headDim
                for i in 0 ..< half {
                    let theta = Double(positions[t]) * pow(base, -2 * Double(i) / Double(rotaryDim))
                    let (ia, ib) = layout == .adjacentPairs ? (2 * i, 2 * i + 1) : (i, i + half)
                    let a = inp[o + ia], b = inp[o + ib]
                    out[o + ia] = a * cos(theta) - b * sin(theta)
                    out[o + ib] = a * sin(theta) + b * cos(theta)
                }
            }
        }
        return out
    }
}
