import Foundation

/// One tensor's description in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in GGUF order: `dims[0]` is the contiguous (innermost) one, i.e. the row length.
    /// A `[576, 49152]` embedding has 49152 rows of 576 values.
    public let dims: [Int]
    public let type: GGMLType
    /// Offset relative to the start of the data section (a multiple of the alignment).
    public let offset: Int
    /// Bytes occupied by the tensor (validated against the type's block geometry).
    public let byteCount: Int
    /// Absolute file offset of the tensor's bytes.
    public let fileOffset: Int

    public var elementCount: Int { dims.reduce(1, *) }
    /// Row-major shape (outermost first): `dims.reversed()`.
    public var shape: [Int] { dims.reversed() }
    /// Number of rows (product of all dims but the first) and row length.
    public var rows: Int { dims.dropFirst().reduce(1, *) }
    public var rowLength: Int { dims.first ?? 1 }
}

/// A raw view of one tensor inside the file mapping; valid while its `GGUFFile` is alive.
public struct GGUFTensorView {
    public let info: GGUFTensorInfo
    public let bytes: UnsafeRawBufferPointer
    public var type: GGMLType { info.type }
    public var dims: [Int] { info.dims }
}

/// A parsed GGUF file (v2 or v3, little-endian), memory-mapped.
///
/// Layout: magic "GGUF", u32 version, u64 tensor count, u64 KV count, KV pairs, tensor infos, padding to
/// `general.alignment` (default 32), data section. Every count, length and offset is checked against the
/// file size before it is used; see Docs/FORMATS.md.
public final class GGUFFile: @unchecked Sendable {
    public let version: UInt32
    public let metadata: GGUFMetadata
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    public let fileSize: Int
    private let storage: MappedBytes
    private let index: [String: Int]

    /// Limits that keep hostile files from driving recursion or huge allocations.
    public static let maxArrayNesting = 8
    public static let maxDims = 4

    /// Maps and parses the file at `path`.
    public convenience init(path: String) throws {
        try self.init(storage: MappedBytes(path: path))
    }

    /// Parses an in-memory copy of `data` (tests, small files).
    public convenience init(data: Data) throws {
        try self.init(storage: MappedBytes(data: data))
    }

    init(storage: MappedBytes) throws {
        self.storage = storage
        let buf = storage.bytes
        fileSize = buf.count
        var c = ByteCursor(buf)
        c.context = "header"
        try c.need(4, "magic")
        let magic = (buf[0], buf[1], buf[2], buf[3])
        guard magic == (0x47, 0x47, 0x55, 0x46) else {
            throw FormatError(.badMagic, "header", offset: 0, "magic is \(magic), expected \"GGUF\"")
        }
        c.offset = 4
        let v = try c.read(UInt32.self, "version")
        guard v == 2 || v == 3 else {
            if v.byteSwapped == 2 || v.byteSwapped == 3 {
                throw FormatError(.unsupportedVersion, "header", offset: 4, "big-endian GGUF is not supported")
            }
            throw FormatError(.unsupportedVersion, "header", offset: 4, "version \(v) (supported: 2, 3)")
        }
        version = v
        let tensorCount64 = try c.read(UInt64.self, "tensor count")
        let kvCount64 = try c.read(UInt64.self, "metadata count")
        // Each KV needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8 + 4 + 4 + 8.
        guard kvCount64 <= UInt64(c.remaining / 13) else {
            throw FormatError(.invalidValue, "header", offset: 16, "metadata count \(kvCount64) cannot fit in \(c.remaining) bytes")
        }
        guard tensorCount64 <= UInt64(c.remaining / 24) else {
            throw FormatError(.invalidValue, "header", offset: 8, "tensor count \(tensorCount64) cannot fit in \(c.remaining) bytes")
        }

        var meta = GGUFMetadata()
        for i in 0 ..< Int(kvCount64) {
            c.context = "metadata #\(i)"
            let keyOffset = c.offset
            let key = try c.readString("key")
            c.context = key
            let typeOffset = c.offset
            let rawType = try c.read(UInt32.self, "value type")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw FormatError(.unknownType, key, offset: typeOffset, "unknown metadata value type \(rawType)")
            }
            let value = try GGUFFile.readValue(type, &c, depth: 0)
            guard meta.insertNew(key, value) else {
                throw FormatError(.duplicate, key, offset: keyOffset, "duplicate metadata key")
            }
        }
        metadata = meta

        var align = 32
        if let a = meta["general.alignment"] {
            guard let ai = a.intValue, ai > 0, ai <= 1 << 20, ai & (ai - 1) == 0 else {
                throw FormatError(.invalidValue, "general.alignment", "alignment \(a) is not a power of two in 1...2^20")
            }
            align = ai
        }
        alignment = align

        struct Pending { var name: String; var dims: [Int]; var type: GGMLType; var offset: Int; var bytes: Int; var infoOffset: Int }
        var pending: [Pending] = []
        pending.reserveCapacity(Int(tensorCount64))
        var names: [String: Int] = [:]
        for i in 0 ..< Int(tensorCount64) {
            c.context = "tensor #\(i)"
            let infoOffset = c.offset
            let name = try c.readString("tensor name")
            c.context = name
            guard names[name] == nil else {
                throw FormatError(.duplicate, name, offset: infoOffset, "duplicate tensor name")
            }
            let nd = try c.read(UInt32.self, "dimension count")
            guard nd >= 1, nd <= UInt32(GGUFFile.maxDims) else {
                throw FormatError(.invalidValue, name, offset: c.offset - 4, "dimension count \(nd) not in 1...\(GGUFFile.maxDims)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0 ..< Int(nd) {
                let dimOffset = c.offset
                let x = try c.read(UInt64.self, "dimension \(d)")
                guard x >= 1, x <= UInt64(Int32.max) * 16 else {
                    throw FormatError(.invalidValue, name, offset: dimOffset, "dimension \(d) is \(x)")
                }
                let (p, o) = elements.multipliedReportingOverflow(by: Int(x))
                guard !o, p <= Int(Int64.max / 8) else {
                    throw FormatError(.invalidValue, name, offset: dimOffset, "element count overflows")
                }
                elements = p
                dims.append(Int(x))
            }
            let typeOffset = c.offset
            let tid = try c.read(UInt32.self, "tensor type")
            guard let type = GGMLType.from(id: tid) else {
                throw FormatError(.unknownType, name, offset: typeOffset, "unknown ggml type id \(tid)")
            }
            guard let rowBytes = type.rowBytes(elements: dims[0]) else {
                throw FormatError(.invalidValue, name, offset: typeOffset,
                                  "row length \(dims[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            let (bytes, o) = rowBytes.multipliedReportingOverflow(by: elements / dims[0])
            guard !o else { throw FormatError(.invalidValue, name, offset: typeOffset, "byte size overflows") }
            let offOffset = c.offset
            let off64 = try c.read(UInt64.self, "tensor offset")
            guard off64 <= UInt64(buf.count) else {
                throw FormatError(.outOfBounds, name, offset: offOffset, "data offset \(off64) is past the end of the file")
            }
            let off = Int(off64)
            guard off % align == 0 else {
                throw FormatError(.misaligned, name, offset: offOffset, "data offset \(off) is not a multiple of the alignment \(align)")
            }
            names[name] = i
            pending.append(Pending(name: name, dims: dims, type: type, offset: off, bytes: bytes, infoOffset: infoOffset))
        }

        c.context = "data section"
        let dataStart = (c.offset + align - 1) / align * align
        guard dataStart <= buf.count || pending.isEmpty else {
            throw FormatError(.truncated, "data section", offset: c.offset, "file ends before the aligned data section at \(dataStart)")
        }
        dataOffset = dataStart
        let dataSize = max(0, buf.count - dataStart)

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(pending.count)
        for p in pending {
            guard p.bytes <= dataSize, p.offset <= dataSize - p.bytes else {
                throw FormatError(.outOfBounds, p.name, offset: p.infoOffset,
                                  "bytes \(p.offset)..<\(p.offset &+ p.bytes) of the data section leave its \(dataSize) bytes")
            }
            infos.append(GGUFTensorInfo(name: p.name, dims: p.dims, type: p.type, offset: p.offset,
                                        byteCount: p.bytes, fileOffset: dataStart + p.offset))
        }
        // Tensors must not overlap.
        let sorted = infos.sorted { $0.offset < $1.offset }
        for k in sorted.indices.dropFirst() where sorted[k - 1].offset + sorted[k - 1].byteCount > sorted[k].offset {
            throw FormatError(.outOfBounds, sorted[k].name, offset: sorted[k].fileOffset,
                              "overlaps tensor \(sorted[k - 1].name)")
        }
        tensors = infos
        index = names
    }

    private static func readValue(_ type: GGUFValueType, _ c: inout ByteCursor, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try c.read(UInt8.self, "uint8 value"))
        case .int8: return .int8(try c.read(Int8.self, "int8 value"))
        case .uint16: return .uint16(try c.read(UInt16.self, "uint16 value"))
        case .int16: return .int16(try c.read(Int16.self, "int16 value"))
        case .uint32: return .uint32(try c.read(UInt32.self, "uint32 value"))
        case .int32: return .int32(try c.read(Int32.self, "int32 value"))
        case .uint64: return .uint64(try c.read(UInt64.self, "uint64 value"))
        case .int64: return .int64(try c.read(Int64.self, "int64 value"))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, "float32 value")))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, "float64 value")))
        case .bool:
            let at = c.offset
            let b = try c.read(UInt8.self, "bool value")
            guard b <= 1 else { throw FormatError(.invalidValue, c.context, offset: at, "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try c.readString("string value"))
        case .array:
            let at = c.offset
            guard depth < maxArrayNesting else {
                throw FormatError(.invalidValue, c.context, offset: at, "arrays nested deeper than \(maxArrayNesting)")
            }
            let rawType = try c.read(UInt32.self, "array element type")
            guard let et = GGUFValueType(rawValue: rawType) else {
                throw FormatError(.unknownType, c.context, offset: at, "unknown array element type \(rawType)")
            }
            let countOffset = c.offset
            let n = try c.read(UInt64.self, "array count")
            guard n <= UInt64(c.remaining / et.minimumEncodedSize) else {
                throw FormatError(.invalidValue, c.context, offset: countOffset,
                                  "array count \(n) of \(et) cannot fit in the \(c.remaining) bytes left")
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(n))
            for _ in 0 ..< Int(n) { out.append(try readValue(et, &c, depth: depth + 1)) }
            return .array(et, out)
        }
    }

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The raw bytes of tensor `name` inside the mapping (valid while `self` is alive).
    public func tensor(_ name: String) throws -> GGUFTensorView {
        guard let i = index[name] else { throw FormatError(.missing, name, "no tensor with this name") }
        let info = tensors[i]
        let b = UnsafeRawBufferPointer(rebasing: storage.bytes[info.fileOffset ..< info.fileOffset + info.byteCount])
        return GGUFTensorView(info: info, bytes: b)
    }

    /// Calls `body` with the tensor view while keeping the file alive.
    public func withTensor<R>(_ name: String, _ body: (GGUFTensorView) throws -> R) throws -> R {
        try withExtendedLifetime(self) { try body(try tensor(name)) }
    }
}
