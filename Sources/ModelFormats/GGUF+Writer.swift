import Foundation

/// Builds GGUF files (v3 by default): metadata of every type and tensors given as raw bytes.
///
/// `general.alignment` is written when `alignment != 32`. Tensor data is padded to the alignment. Files are
/// written to a temporary sibling and renamed into place, so readers never see a half-written file.
/// Used by tests to build tiny models and corrupt files, and to export models.
public struct GGUFWriter {
    public struct Tensor {
        public var name: String
        public var type: GGMLType
        /// GGUF order: dims[0] is the row length.
        public var dims: [Int]
        public var bytes: [UInt8]
    }

    public var version: UInt32
    public var alignment: Int
    public private(set) var metadata = GGUFMetadata()
    public private(set) var tensors: [Tensor] = []

    public init(version: UInt32 = 3, alignment: Int = 32) {
        self.version = version; self.alignment = alignment
    }

    public mutating func set(_ key: String, _ value: GGUFValue) { metadata.set(key, value) }

    /// Adds a tensor; checks the byte count against the type's block geometry and the name for duplicates.
    public mutating func addTensor(_ name: String, type: GGMLType, dims: [Int], bytes: [UInt8]) throws {
        guard !tensors.contains(where: { $0.name == name }) else {
            throw FormatError(.duplicate, name, "tensor added twice")
        }
        guard !dims.isEmpty, dims.count <= GGUFFile.maxDims, dims.allSatisfy({ $0 >= 1 }),
              let row = type.rowBytes(elements: dims[0]) else {
            throw FormatError(.invalidValue, name, "dims \(dims) invalid for \(type.name)")
        }
        let expected = row * dims.dropFirst().reduce(1, *)
        guard expected == bytes.count else {
            throw FormatError(.invalidValue, name, "\(bytes.count) bytes given, \(type.name) \(dims) needs \(expected)")
        }
        tensors.append(Tensor(name: name, type: type, dims: dims, bytes: bytes))
    }

    /// Adds an F32 tensor from floats (GGUF dims order).
    public mutating func addTensor(_ name: String, dims: [Int], floats: [Float]) throws {
        let bytes = floats.withUnsafeBytes { Array($0) }
        try addTensor(name, type: .f32, dims: dims, bytes: bytes)
    }

    /// Adds floats stored as F32, F16, Q8_0, Q4_0 or Q4_1 (other types: pass raw bytes). The quantizers follow
    /// ggml's reference ones (`quantize_row_*_ref`), per block of 32 with F16 scales:
    /// Q8_0: d = max|x| / 127, q = round(x / d). Q4_0: d = (the value of largest magnitude) / −8,
    /// q = min(15, trunc(x / d + 8.5)). Q4_1: d = (max − min) / 15, m = min, q = min(15, trunc((x − m) / d + 0.5)).
    /// Nibbles: element j in the low half of qs[j], element j + 16 in the high half. Quantized types need finite input.
    public mutating func addTensor(_ name: String, dims: [Int], floats: [Float], as type: GGMLType) throws {
        guard dims.reduce(1, *) == floats.count else {
            throw FormatError(.invalidValue, name, "\(floats.count) floats for dims \(dims)")
        }
        var bytes: [UInt8] = []
        switch type {
        case .f32: bytes = floats.withUnsafeBytes { Array($0) }
        case .f16:
            bytes.reserveCapacity(2 * floats.count)
            for f in floats { withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .q4_0, .q4_1:
            guard floats.count % 32 == 0, dims[0] % 32 == 0 else { throw FormatError(.invalidValue, name, "\(type.name) needs rows of a multiple of 32 values") }
            guard floats.allSatisfy(\.isFinite) else { throw FormatError(.invalidValue, name, "non-finite value cannot be quantized") }
            bytes.reserveCapacity(floats.count / 32 * type.bytesPerBlock)
            for b in stride(from: 0, to: floats.count, by: 32) {
                let blk = floats[b ..< b + 32]
                var q = [UInt8](repeating: 0, count: 32)
                if type == .q4_0 {
                    var amax: Float = 0, vmax: Float = 0
                    for v in blk where abs(v) > amax { amax = abs(v); vmax = v }
                    let d = vmax / -8
                    let id: Float = d != 0 ? 1 / d : 0
                    withUnsafeBytes(of: Float16(d).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                    for j in 0 ..< 32 { q[j] = UInt8(min(15, Int8(floats[b + j] * id + 8.5))) }
                } else {
                    let lo = blk.min()!, hi = blk.max()!
                    let d = (hi - lo) / 15
                    let id: Float = d != 0 ? 1 / d : 0
                    withUnsafeBytes(of: Float16(d).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                    withUnsafeBytes(of: Float16(lo).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                    for j in 0 ..< 32 { q[j] = UInt8(min(15, Int8((floats[b + j] - lo) * id + 0.5))) }
                }
                for j in 0 ..< 16 { bytes.append(q[j] | q[j + 16] << 4) }
            }
        case .q8_0:
            guard floats.count % 32 == 0, dims[0] % 32 == 0 else { throw FormatError(.invalidValue, name, "Q8_0 needs rows of a multiple of 32 values") }
            guard floats.allSatisfy(\.isFinite) else { throw FormatError(.invalidValue, name, "non-finite value cannot be quantized") }
            bytes.reserveCapacity(floats.count / 32 * 34)
            for b in stride(from: 0, to: floats.count, by: 32) {
                var amax: Float = 0
                for i in b ..< b + 32 { amax = max(amax, abs(floats[i])) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                withUnsafeBytes(of: Float16(d).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
                for i in b ..< b + 32 { bytes.append(UInt8(bitPattern: Int8((floats[i] * id).rounded(.toNearestOrAwayFromZero)))) }
            }
        default:
            throw FormatError(.invalidValue, name, "no float encoder for \(type.name); pass raw bytes")
        }
        try addTensor(name, type: type, dims: dims, bytes: bytes)
    }

    /// The complete file contents.
    public func serialize() throws -> Data {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw FormatError(.invalidValue, "general.alignment", "alignment \(alignment) is not a power of two")
        }
        var meta = metadata
        if alignment != 32, meta["general.alignment"] == nil { meta.set("general.alignment", .uint32(UInt32(alignment))) }
        var out = Data()
        out.append(contentsOf: Array("GGUF".utf8))
        Self.put(&out, version)
        Self.put(&out, UInt64(tensors.count))
        Self.put(&out, UInt64(meta.count))
        for (k, v) in meta.entries {
            Self.putString(&out, k)
            Self.put(&out, v.type.rawValue)
            Self.putValue(&out, v)
        }
        var offsets: [Int] = []
        var cursor = 0
        for t in tensors {
            offsets.append(cursor)
            cursor = (cursor + t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            Self.putString(&out, t.name)
            Self.put(&out, UInt32(t.dims.count))
            for d in t.dims { Self.put(&out, UInt64(d)) }
            Self.put(&out, t.type.id)
            Self.put(&out, UInt64(off))
        }
        Self.pad(&out, alignment)
        for t in tensors {
            out.append(contentsOf: t.bytes)
            Self.pad(&out, alignment)
        }
        return out
    }

    /// Writes atomically: temp file in the same directory, then rename.
    public func write(to path: String) throws {
        try GGUFWriter.atomicWrite(try serialize(), to: path)
    }

    /// Temp file in the same folder, then rename: readers never see a partial file.
    public static func atomicWrite(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        do {
            try data.write(to: tmp)
            if rename(tmp.path, url.path) != 0 {
                throw FormatError(.io, path, "rename failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            if error is FormatError { throw error }
            throw FormatError(.io, path, "write failed: \(error)")
        }
    }

    static func put<T: FixedWidthInteger>(_ out: inout Data, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    static func putString(_ out: inout Data, _ s: String) {
        let u = Array(s.utf8)
        put(&out, UInt64(u.count)); out.append(contentsOf: u)
    }
    static func pad(_ out: inout Data, _ alignment: Int) {
        let r = out.count % alignment
        if r != 0 { out.append(contentsOf: [UInt8](repeating: 0, count: alignment - r)) }
    }
    static func putValue(_ out: inout Data, _ v: GGUFValue) {
        switch v {
        case .uint8(let x): put(&out, x)
        case .int8(let x): put(&out, x)
        case .uint16(let x): put(&out, x)
        case .int16(let x): put(&out, x)
        case .uint32(let x): put(&out, x)
        case .int32(let x): put(&out, x)
        case .uint64(let x): put(&out, x)
        case .int64(let x): put(&out, x)
        case .float32(let x): put(&out, x.bitPattern)
        case .float64(let x): put(&out, x.bitPattern)
        case .bool(let b): put(&out, UInt8(b ? 1 : 0))
        case .string(let s): putString(&out, s)
        case .array(let et, let a):
            put(&out, et.rawValue); put(&out, UInt64(a.count))
            for e in a { putValue(&out, e) }
        }
    }
}

extension GGUFValue {
    /// Convenience constructors for arrays.
    public static func strings(_ a: [String]) -> GGUFValue { .array(.string, a.map { .string($0) }) }
    public static func float32s(_ a: [Float]) -> GGUFValue { .array(.float32, a.map { .float32($0) }) }
    public static func int32s(_ a: [Int32]) -> GGUFValue { .array(.int32, a.map { .int32($0) }) }
}
