import Foundation

/// The `.ststats` file: one shard's mergeable statistics (exact moments or an approximate
/// sketch), small, little-endian, checksummed. Layout (version 1), all integers little-endian:
///
///   offset  size  field
///   0       8     magic "SFTSTATS" (ASCII)
///   8       4     version (UInt32) = 1
///   12      4     kind (UInt32): 1 = moments (n, Σx, XᵀX), 2 = sketch (n, μ, σ, V)
///   16      8     dimension d (UInt64), 1 ... 65536
///   24      8     rows n (UInt64), <= 2^53
///   32      8     rank r (UInt64): 0 for moments, 1 ... d for a sketch
///   40      8·P   payload, IEEE-754 binary64 little-endian:
///                   moments: Σx (d), then XᵀX (d·d, row-major)             P = d + d²
///                   sketch:  μ (d), then σ_1..σ_r, then V (r·d, row j = v_j)  P = d + r + r·d
///   40+8P   8     checksum (UInt64): FNV-1a 64 of bytes [0, 40 + 8P)
///
/// Reading treats every field as hostile: the exact file size is computed from the header with
/// overflow checks before anything else is read, and every failure throws a `StatsFileError`
/// naming the field and its offset.
public enum StatsFile {
    public static let magic: [UInt8] = Array("SFTSTATS".utf8)
    public static let version: UInt32 = 1
    public static let headerBytes = 40
    public static let maxDimension = 65536
    public enum Kind: UInt32 { case moments = 1, sketch = 2 }

    public static func encode(_ stats: CovarianceStats) -> Data {
        encode(kind: .moments, dimension: stats.dimension, rows: stats.count, rank: 0, payload: [stats.sum, stats.gram])
    }

    public static func encode(_ sketch: SubspaceSketch) -> Data {
        encode(kind: .sketch, dimension: sketch.dimension, rows: sketch.rows, rank: sketch.rank,
               payload: [sketch.mean, sketch.singularValues, sketch.basis])
    }

    public static func write(_ stats: CovarianceStats, to url: URL) throws { try encode(stats).write(to: url, options: .atomic) }
    public static func write(_ sketch: SubspaceSketch, to url: URL) throws { try encode(sketch).write(to: url, options: .atomic) }

    public static func readMoments(from url: URL) throws -> CovarianceStats { try decodeMoments(Data(contentsOf: url)) }
    public static func readSketch(from url: URL) throws -> SubspaceSketch { try decodeSketch(Data(contentsOf: url)) }

    public static func decodeMoments(_ data: Data) throws -> CovarianceStats {
        let (h, values) = try decode(data, expecting: .moments)
        let d = h.dimension
        return CovarianceStats(dimension: d, count: h.rows, sum: Array(values[0 ..< d]), gram: Array(values[d ..< d + d * d]))
    }

    public static func decodeSketch(_ data: Data) throws -> SubspaceSketch {
        let (h, values) = try decode(data, expecting: .sketch)
        let d = h.dimension, r = h.rank
        let sigma = Array(values[d ..< d + r])
        for j in 0 ..< r where sigma[j] < 0 || (j > 0 && sigma[j] > sigma[j - 1]) {
            throw StatsFileError.invalidValue(field: "singular value \(j)", offset: headerBytes + 8 * (d + j),
                                              reason: "must be non-negative and descending")
        }
        guard h.rows >= 1 else { throw StatsFileError.invalidValue(field: "rows", offset: 24, reason: "a sketch needs at least one row") }
        return SubspaceSketch(rows: h.rows, mean: Array(values[0 ..< d]), singularValues: sigma,
                              basis: Array(values[d + r ..< d + r + r * d]))
    }

    struct Header { var kind: Kind; var dimension: Int; var rows: Int; var rank: Int }

    static func encode(kind: Kind, dimension: Int, rows: Int, rank: Int, payload: [[Double]]) -> Data {
        var data = Data(capacity: headerBytes + 8 * payload.reduce(0) { $0 + $1.count } + 8)
        data.append(contentsOf: magic)
        appendLE(&data, version)
        appendLE(&data, kind.rawValue)
        appendLE(&data, UInt64(dimension))
        appendLE(&data, UInt64(rows))
        appendLE(&data, UInt64(rank))
        for part in payload { for v in part { appendLE(&data, v.bitPattern) } }
        appendLE(&data, fnv1a(data, count: data.count))
        return data
    }

    static func decode(_ data: Data, expecting: Kind) throws -> (Header, [Double]) {
        let bytes = [UInt8](data)
        guard bytes.count >= headerBytes + 8 else {
            throw StatsFileError.truncated(expected: headerBytes + 8, actual: bytes.count, what: "header and checksum")
        }
        guard Array(bytes[0 ..< 8]) == magic else { throw StatsFileError.badMagic(Array(bytes[0 ..< 8])) }
        let version = UInt32(truncatingIfNeeded: readLE(bytes, 8, 4))
        guard version == StatsFile.version else { throw StatsFileError.unsupportedVersion(version) }
        let rawKind = UInt32(truncatingIfNeeded: readLE(bytes, 12, 4))
        guard let kind = Kind(rawValue: rawKind) else { throw StatsFileError.unknownKind(rawKind) }
        guard kind == expecting else { throw StatsFileError.wrongKind(expected: expecting.rawValue, found: rawKind) }
        let d64 = readLE(bytes, 16, 8), n64 = readLE(bytes, 24, 8), r64 = readLE(bytes, 32, 8)
        guard d64 >= 1 && d64 <= UInt64(maxDimension) else {
            throw StatsFileError.invalidValue(field: "dimension", offset: 16, reason: "\(d64) not in 1...\(maxDimension)")
        }
        guard n64 <= 1 << 53 else { throw StatsFileError.invalidValue(field: "rows", offset: 24, reason: "\(n64) exceeds 2^53") }
        let d = Int(d64)
        switch kind {
        case .moments where r64 != 0:
            throw StatsFileError.invalidValue(field: "rank", offset: 32, reason: "\(r64) must be 0 for moments")
        case .sketch where r64 < 1 || r64 > d64:
            throw StatsFileError.invalidValue(field: "rank", offset: 32, reason: "\(r64) not in 1...\(d)")
        default: break
        }
        let r = Int(r64)
        // Payload count with overflow checks (d <= 65536 keeps d² in range, but check anyway).
        let (dd, o1) = d.multipliedReportingOverflow(by: kind == .moments ? d : r)
        let (p1, o2) = dd.addingReportingOverflow(d + (kind == .moments ? 0 : r))
        let (pb, o3) = p1.multipliedReportingOverflow(by: 8)
        let (total, o4) = pb.addingReportingOverflow(headerBytes + 8)
        guard !(o1 || o2 || o3 || o4) else { throw StatsFileError.invalidValue(field: "dimension", offset: 16, reason: "payload size overflows") }
        guard bytes.count == total else {
            if bytes.count < total { throw StatsFileError.truncated(expected: total, actual: bytes.count, what: "payload") }
            throw StatsFileError.trailingBytes(expected: total, actual: bytes.count)
        }
        let stored = readLE(bytes, total - 8, 8)
        let computed = fnv1a(data, count: total - 8)
        guard stored == computed else { throw StatsFileError.checksumMismatch(stored: stored, computed: computed) }
        var values = [Double](repeating: 0, count: p1)
        for i in 0 ..< p1 {
            let v = Double(bitPattern: readLE(bytes, headerBytes + 8 * i, 8))
            guard v.isFinite else {
                throw StatsFileError.invalidValue(field: "payload value \(i)", offset: headerBytes + 8 * i, reason: "not finite")
            }
            values[i] = v
        }
        return (Header(kind: kind, dimension: d, rows: Int(n64), rank: r), values)
    }

    static func appendLE<T: FixedWidthInteger>(_ data: inout Data, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }

    static func readLE(_ b: [UInt8], _ offset: Int, _ size: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0 ..< size { v |= UInt64(b[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    /// FNV-1a 64 (Fowler, Noll, Vo) of the first `count` bytes.
    static func fnv1a(_ data: Data, count: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self)
            for i in 0 ..< count { h = (h ^ UInt64(p[i])) &* 0x0000_0100_0000_01B3 }
        }
        return h
    }
}

/// Why a statistics file was rejected; each case names the field and where it is.
public enum StatsFileError: Error, Equatable, CustomStringConvertible {
    case truncated(expected: Int, actual: Int, what: String)
    case trailingBytes(expected: Int, actual: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt32)
    case unknownKind(UInt32)
    case wrongKind(expected: UInt32, found: UInt32)
    case checksumMismatch(stored: UInt64, computed: UInt64)
    case invalidValue(field: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case .truncated(let e, let a, let w): return "stats file truncated: \(w) needs \(e) bytes, file has \(a)"
        case .trailingBytes(let e, let a): return "stats file has \(a - e) unexpected bytes after its \(e)-byte content"
        case .badMagic(let m): return "not a stats file: magic at offset 0 is \(m), expected \"SFTSTATS\""
        case .unsupportedVersion(let v): return "stats file version \(v) at offset 8 is not supported (only 1)"
        case .unknownKind(let k): return "stats file kind \(k) at offset 12 is unknown (1 = moments, 2 = sketch)"
        case .wrongKind(let e, let f): return "stats file holds kind \(f) at offset 12, expected \(e)"
        case .checksumMismatch(let s, let c): return "stats file checksum mismatch: stored \(s), computed \(c) (file corrupted)"
        case .invalidValue(let f, let o, let r): return "stats file \(f) at offset \(o): \(r)"
        }
    }
}
