extension RMSNorm {
    /// Double reference of `forward`: returns out (rows x channels).
    package static func forwardReference(_ inp: [Double], _ weight: [Double], rows: Int, channels: Int,
                                         eps: Double) -> [Double] {
        var out = [Double](repeating: 0, count: rows * channels)
        for r in 0 ..< rows {
            var ss = 0.0
            for c in 0 ..< channels { ss += inp[r * channels + c] * inp[r * channels + c] }
            let s = 1 / (ss / Double(channels) + eps).squareRoot()
            for c in 0 ..< channels { out[r * channels + c] = inp[r * channels + c] * s * weight[c] }
        }
        return out
    }

    /// Reciprocal RMS per row in Double.
    package static func rstdReference(_ inp: [Double], rows: Int, channels: Int, eps: Double) -> [Double] {
        (0 ..< rows).map { r in
            var ss = 0.0
            for c in 0 ..< channels { ss += inp[r * channels + c] * inp[r * channels + c] }
            return 1 / (ss / Double(channels) + eps).squareRoot()
        }
    }
}
