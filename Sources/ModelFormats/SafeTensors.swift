import Foundation

/// safetensors element types we read and write (others are rejected as unknown).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Row-major shape, outermost first (PyTorch order). A Linear weight is `[out, in]`.
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataOffsets: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

public struct SafeTensorView {
    public let info: SafeTensorInfo
    public let bytes: UnsafeRawBufferPointer
}

/// A safetensors file: u64 LE header length N, N bytes of JSON header, data section.
///
/// The header maps tensor names to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the
/// data section) plus an optional `"__metadata__"` string map. Checked: N against the file size and a 100 MiB
/// cap, JSON shape, known dtype, non-negative shape, `end - begin == elements * dtype size`, ranges inside the
/// data section and not overlapping.
public final class SafeTensorsFile: @unchecked Sendable {
    public static let maxHeaderBytes = 100 << 20
    public let tensors: [SafeTensorInfo]
    public let metadata: [String: String]
    public let dataOffset: Int
    private let storage: MappedBytes
    private let index: [String: Int]

    public convenience init(path: String) throws { try self.init(storage: MappedBytes(path: path)) }
    public convenience init(data: Data) throws { try self.init(storage: MappedBytes(data: data)) }

    init(storage: MappedBytes) throws {
        self.storage = storage
        let buf = storage.bytes
        var c = ByteCursor(buf)
        c.context = "header"
        let n64 = try c.read(UInt64.self, "header length")
        guard n64 <= UInt64(min(c.remaining, SafeTensorsFile.maxHeaderBytes)) else {
            throw FormatError(.truncated, "header", offset: 0,
                              "header length \(n64) exceeds the \(c.remaining) bytes left (cap \(SafeTensorsFile.maxHeaderBytes))")
        }
        let n = Int(n64)
        let headerData = Data(UnsafeRawBufferPointer(rebasing: buf[8 ..< 8 + n]))
        dataOffset = 8 + n
        let dataSize = buf.count - dataOffset
        if let dup = SafeTensorsFile.duplicateTopLevelKey(UnsafeRawBufferPointer(rebasing: buf[8 ..< 8 + n])) {
            throw FormatError(.duplicate, dup, offset: 8, "tensor name occurs twice in the header")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw FormatError(.invalidValue, "header", offset: 8, "header is not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = json as? [String: Any] else {
            throw FormatError(.invalidValue, "header", offset: 8, "header is not a JSON object")
        }
        var meta: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        for (name, value) in dict.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw FormatError(.invalidValue, name, offset: 8, "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else { throw FormatError(.invalidValue, "__metadata__.\(k)", offset: 8, "value is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let e = value as? [String: Any] else { throw FormatError(.invalidValue, name, offset: 8, "entry is not an object") }
            guard let ds = e["dtype"] as? String else { throw FormatError(.invalidValue, name, offset: 8, "missing dtype") }
            guard let dtype = SafeTensorsDType(rawValue: ds) else {
                throw FormatError(.unknownType, name, offset: 8, "unsupported dtype \(ds)")
            }
            guard let shapeAny = e["shape"] as? [Any], shapeAny.count <= 8 else {
                throw FormatError(.invalidValue, name, offset: 8, "shape missing or has more than 8 dims")
            }
            var shape: [Int] = []
            var elements = 1
            for s in shapeAny {
                guard let d = Self.exactInt(s), d >= 0 else { throw FormatError(.invalidValue, name, offset: 8, "bad shape \(shapeAny)") }
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw FormatError(.invalidValue, name, offset: 8, "element count overflows") }
                elements = p; shape.append(d)
            }
            guard let offs = e["data_offsets"] as? [Any], offs.count == 2,
                  let b = Self.exactInt(offs[0]), let en = Self.exactInt(offs[1]), b >= 0, b <= en else {
                throw FormatError(.invalidValue, name, offset: 8, "data_offsets missing or not [begin, end] with begin <= end")
            }
            guard en <= dataSize else {
                throw FormatError(.outOfBounds, name, offset: dataOffset + b,
                                  "data_offsets [\(b), \(en)] leave the \(dataSize)-byte data section")
            }
            let (nb, o) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !o, nb == en - b else {
                throw FormatError(.invalidValue, name, offset: dataOffset + b,
                                  "\(en - b) bytes for \(ds) \(shape) which needs \(elements * dtype.byteSize)")
            }
            infos.append(SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: b ..< en))
        }
        let sorted = infos.sorted { $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound }
        for k in sorted.indices.dropFirst() where sorted[k - 1].dataOffsets.upperBound > sorted[k].dataOffsets.lowerBound {
            throw FormatError(.outOfBounds, sorted[k].name, offset: dataOffset + sorted[k].dataOffsets.lowerBound,
                              "overlaps tensor \(sorted[k - 1].name)")
        }
        tensors = sorted
        metadata = meta
        index = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.name, $0) })
    }

    /// The first key that occurs twice at the top level of a JSON object (JSON parsers keep one silently).
    /// A lightweight scan: strings (with escapes) are skipped, depth is tracked; malformed JSON returns nil
    /// and is rejected by the parser afterwards.
    static func duplicateTopLevelKey(_ b: UnsafeRawBufferPointer) -> String? {
        var seen = Set<[UInt8]>()
        var depth = 0, i = 0
        var expectKey = false
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                var j = i + 1
                while j < b.count && b[j] != UInt8(ascii: "\"") { j += b[j] == UInt8(ascii: "\\") ? 2 : 1 }
                guard j < b.count else { return nil }
                if depth == 1 && expectKey {
                    let key = Array(b[(i + 1) ..< j])
                    if !seen.insert(key).inserted { return String(decoding: key, as: UTF8.self) }
                    expectKey = false
                }
                i = j + 1
                continue
            }
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 && c == UInt8(ascii: "{") { expectKey = true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            case UInt8(ascii: ","): if depth == 1 { expectKey = true }
            default: break
            }
            i += 1
        }
        return nil
    }

    private static func exactInt(_ v: Any) -> Int? {
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 9.0e15 else { return nil }
            return n.intValue
        }
        return nil
    }

    public func tensorInfo(_ name: String) -> SafeTensorInfo? { index[name].map { tensors[$0] } }

    /// Raw bytes of `name` inside the mapping (valid while `self` is alive).
    public func tensor(_ name: String) throws -> SafeTensorView {
        guard let i = index[name] else { throw FormatError(.missing, name, "no tensor with this name") }
        let t = tensors[i]
        let r = (dataOffset + t.dataOffsets.lowerBound) ..< (dataOffset + t.dataOffsets.upperBound)
        return SafeTensorView(info: t, bytes: UnsafeRawBufferPointer(rebasing: storage.bytes[r]))
    }

    /// Tensor `name` converted to Float (F32 copied, F16 / BF16 widened).
    public func floats(_ name: String) throws -> [Float] {
        let v = try tensor(name)
        return withExtendedLifetime(self) { SafeTensorsFile.toFloats(v.bytes, v.info.dtype) }
    }

    static func toFloats(_ b: UnsafeRawBufferPointer, _ dtype: SafeTensorsDType) -> [Float] {
        let n = b.count / dtype.byteSize
        var out = [Float](repeating: 0, count: n)
        for i in 0 ..< n {
            switch dtype {
            case .f32: out[i] = Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            case .f16: out[i] = Float(Float16(bitPattern: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
            case .bf16: out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
            }
        }
        return out
    }
}

/// Writes safetensors files (tensors in insertion order, 8-byte aligned header padded with spaces).
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8])] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) throws {
        guard name != "__metadata__", !entries.contains(where: { $0.name == name }) else {
            throw FormatError(.duplicate, name, "tensor name reused or reserved")
        }
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) * dtype.byteSize == bytes.count else {
            throw FormatError(.invalidValue, name, "\(bytes.count) bytes do not match \(dtype.rawValue) \(shape)")
        }
        entries.append((name, dtype, shape, bytes))
    }

    /// Adds floats converted to `dtype` (F16 rounds to nearest even; BF16 rounds to nearest even).
    public mutating func add(_ name: String, shape: [Int], floats: [Float], as dtype: SafeTensorsDType = .f32) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * dtype.byteSize)
        for f in floats {
            switch dtype {
            case .f32: withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .f16: withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .bf16: withUnsafeBytes(of: floatToBF16(f).littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    public func serialize() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        GGUFWriter.put(&out, UInt64(json.count))
        out.append(json)
        for e in entries { out.append(contentsOf: e.bytes) }
        return out
    }

    public func write(to path: String) throws { try GGUFWriter.atomicWrite(try serialize(), to: path) }
}

/// Float -> bfloat16 bits, round to nearest even (NaN stays NaN).
public func floatToBF16(_ f: Float) -> UInt16 {
    let b = f.bitPattern
    if f.isNaN { return UInt16(b >> 16) | 0x40 }
    let rounding = 0x7FFF + ((b >> 16) & 1)
    return UInt16((b &+ rounding) >> 16)
}
