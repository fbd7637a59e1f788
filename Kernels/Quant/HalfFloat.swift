/// Bit-exact IEEE binary16 and bfloat16 conversions (no dependency on the platform's Float16).
public enum HalfFloat {
    /// binary16 bits -> Float, exact for every input (subnormals, ±inf, NaN payload kept).
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        if exp != 0 { return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13)) }
        // zero or subnormal: mant · 2^-24, exact in Float
        let magnitude = Float(mant) * 5.960_464_477_539_063e-8
        return sign != 0 ? -magnitude : magnitude
    }

    /// Float -> binary16 bits, round to nearest even (as F16C `vcvtps2ph` with mode 0 and
    /// ggml's `GGML_FP32_TO_FP16`); overflow gives ±inf, NaN stays NaN (quiet).
    @inline(__always)
    public static func fromFloat(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xFF)
        let mant = bits & 0x7F_FFFF
        if exp == 0xFF {
            return sign | 0x7C00 | (mant != 0 ? UInt16(0x200 | (mant >> 13)) : 0)
        }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            // Subnormal half (or zero): shift the full significand, round to nearest even.
            if e < -10 { return sign }
            let m = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rem = m & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (h & 1) != 0) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e << 10) | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0) { h += 1 }  // may carry into the exponent: correct
        return sign | UInt16(h)
    }

    /// bfloat16 bits -> Float (exact).
    @inline(__always)
    public static func bf16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Float -> bfloat16 bits, round to nearest even; NaN becomes a quiet NaN (ggml's
    /// `ggml_compute_fp32_to_bf16`).
    @inline(__always)
    public static func bf16FromFloat(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if (u & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16((u >> 16) | 64) }
        return UInt16((u &+ (0x7FFF &+ ((u >> 16) & 1))) >> 16)
    }
}
