/// Tensor element types of GGUF files, raw values = ggml's `enum ggml_type` ids.
///
/// Quantized types store a row of K values as K / blockSize blocks of `bytesPerBlock` bytes
/// (little-endian, no padding); a row must hold a whole number of blocks.
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8
    case q4_K = 12
    case q6_K = 14
    case bf16 = 30

    /// Values per block (1 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q8_0: return 32
        case .q4_K, .q6_K: return 256
        }
    }

    /// Bytes per block:
    ///   F32 4; F16 2; BF16 2;
    ///   Q4_0 18 = f16 d + 16 bytes of nibbles;       x = (q − 8)·d
    ///   Q4_1 20 = f16 d + f16 m + 16 bytes;          x = q·d + m
    ///   Q8_0 34 = f16 d + 32 int8;                   x = q·d
    ///   Q4_K 144 = f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
    ///   Q6_K 210 = 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d
    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q8_0: return 34
        case .q4_K: return 144
        case .q6_K: return 210
        }
    }

    /// Bytes of a row of `count` values, or nil when `count` is not a whole number of blocks
    /// (or the size overflows).
    public func rowBytes(count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// The ggml name (`"q4_K"`, `"bf16"`, ...).
    public var name: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .q4_0: return "q4_0"
        case .q4_1: return "q4_1"
        case .q8_0: return "q8_0"
        case .q4_K: return "q4_K"
        case .q6_K: return "q6_K"
        case .bf16: return "bf16"
        }
    }
}
