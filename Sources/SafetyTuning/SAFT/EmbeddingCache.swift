import Foundation
import Llama

/// Embeddings on disk, so re-scoring with another k, threshold or method costs no forward passes
/// and rows shared by several files are embedded once. One file per (model file identity, chat
/// template, block, position, token limit) in the cache directory, named by the FNV-1a 64 hash of
/// that key; inside, one record per distinct row, keyed by the hash of the row's rendered fields.
///
/// File layout (`.stemb`, version 1, little-endian):
///
///   offset  size   field
///   0       8      magic "SFTEMBED"
///   8       4      version (UInt32) = 1
///   12      4      dim (UInt32)
///   16      8      records n (UInt64)
///   24      4      key length K (UInt32), then K bytes of the UTF-8 key (checked on read)
///   28+K    n·(16 + 4·dim)  records: row hash (UInt64), tokens (UInt32), truncated (UInt32, 0/1),
///                           dim float32 values
///   end-8   8      FNV-1a 64 of every preceding byte
///
/// A file that fails any check is ignored with a warning (the rows are embedded again and the
/// file rewritten); writes are atomic, so a killed run leaves the previous file intact.
public struct EmbeddingCache {
    public var directory: String
    public var modelIdentity: String
    public var templateKey: String
    public var warnings: [String] = []

    public init(directory: String, modelPath: String, template: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        modelIdentity = try EmbeddingCache.identity(ofModel: modelPath)
        templateKey = template
    }

    /// Size and content hashes (first and last MiB) of the model file, or of every file of a
    /// safetensors directory: a renamed copy hits, a re-quantized file misses.
    public static func identity(ofModel path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DatasetError("model '\(path)' does not exist") }
        let files = isDir.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
            : [path]
        var parts: [String] = []
        for f in files {
            guard let h = FileHandle(forReadingAtPath: f) else { continue }
            defer { try? h.close() }
            let size = try h.seekToEnd()
            try h.seek(toOffset: 0)
            let head = try h.read(upToCount: 1 << 20) ?? Data()
            try h.seek(toOffset: size > 1 << 20 ? size - (1 << 20) : 0)
            let tail = try h.read(upToCount: 1 << 20) ?? Data()
            parts.append("\((f as NSString).lastPathComponent.count > 0 && isDir.boolValue ? (f as NSString).lastPathComponent + ":" : "")\(size):\(hex(fnv1a(head))):\(hex(fnv1a(tail)))")
        }
        return parts.joined(separator: ",")
    }

    /// The key of one file of the cache.
    public func key(block: Int, position: EmbeddingPosition, maxTokens: Int) -> String {
        "model=\(modelIdentity)|template=\(templateKey)|block=\(block)|position=\(position.rawValue)|max-tokens=\(maxTokens)"
    }

    public func path(forKey key: String) -> String { directory + "/" + EmbeddingCache.hex(EmbeddingCache.fnv1a(Data(key.utf8))) + ".stemb" }

    /// The identity of a row: its rendered fields (system, prompt, response), hashed.
    public static func rowHash(_ s: Sample) -> UInt64 {
        fnv1a(Data(((s.system ?? "\u{0}") + "\u{1}" + s.prompt + "\u{1}" + s.response).utf8))
    }

    struct Record { var tokens: UInt32; var truncated: Bool; var values: ArraySlice<Float> }

    /// Embeds the rows the cache lacks (at all `blocks`), stores them, and returns every row's
    /// embeddings in input order. `hits` counts rows served from the cache.
    public mutating func embed(_ samples: [Sample], model: LoadedModel, blocks: [Int], position: EmbeddingPosition,
                               maxTokens: Int, batchTokens: Int, workers: Int? = nil,
                               progress: ((Int, Int) -> Void)? = nil) throws -> (embeddings: Embeddings, hits: Int) {
        let dim = model.model.config.hiddenSize
        let hashes = samples.map(EmbeddingCache.rowHash)
        var stores: [Int: [UInt64: Record]] = [:]
        for b in blocks { stores[b] = load(key: key(block: b, position: position, maxTokens: maxTokens), dim: dim) }
        // Rows to embed: missing at any block, once per distinct hash.
        var missing: [Int] = [], seen = Set<UInt64>()
        for (i, h) in hashes.enumerated() where !seen.contains(h) && blocks.contains(where: { stores[$0]![h] == nil }) {
            missing.append(i); seen.insert(h)
        }
        var seconds = 0.0, tokensRun = 0, shared = 0
        if !missing.isEmpty {
            let fresh = try SAFTEmbedder.embed(missing.map { samples[$0] }, model: model, blocks: blocks, position: position,
                                               maxTokens: maxTokens, batchTokens: batchTokens, workers: workers, progress: progress)
            seconds = fresh.seconds
            tokensRun = fresh.tokensRun ?? fresh.tokens
            shared = fresh.sharedPrefixTokens
            for b in blocks {
                let x = fresh.byBlock[b]!
                for (j, i) in missing.enumerated() {
                    stores[b]![hashes[i]] = Record(tokens: UInt32(fresh.rowTokens[j]), truncated: fresh.rowTruncated[j],
                                                   values: x[j * dim ..< (j + 1) * dim])
                }
                try save(stores[b]!, key: key(block: b, position: position, maxTokens: maxTokens), dim: dim)
            }
        }
        var byBlock: [Int: [Float]] = [:]
        for b in blocks {
            var x = [Float](); x.reserveCapacity(samples.count * dim)
            for h in hashes { x.append(contentsOf: stores[b]![h]!.values) }
            byBlock[b] = x
        }
        let first = stores[blocks[0]]!
        let rowTokens = hashes.map { Int(first[$0]!.tokens) }, rowTruncated = hashes.map { first[$0]!.truncated }
        var e = Embeddings(rows: samples.count, dim: dim, byBlock: byBlock, position: position,
                           truncated: rowTruncated.filter { $0 }.count, tokens: rowTokens.reduce(0, +), seconds: seconds)
        e.rowTokens = rowTokens
        e.rowTruncated = rowTruncated
        e.tokensRun = tokensRun
        e.sharedPrefixTokens = shared
        let hits = samples.indices.filter { !seen.contains(hashes[$0]) }.count
        return (e, hits)
    }

    mutating func load(key: String, dim: Int) -> [UInt64: Record] {
        let path = path(forKey: key)
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        do { return try EmbeddingCache.decode(Data(contentsOf: URL(fileURLWithPath: path)), key: key, dim: dim) } catch {
            warnings.append("ignoring cache file \(path): \(error)")
            return [:]
        }
    }

    func save(_ store: [UInt64: Record], key: String, dim: Int) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(40 + key.utf8.count + store.count * (16 + 4 * dim))
        bytes += Array("SFTEMBED".utf8)
        EmbeddingCache.append(&bytes, UInt32(1))
        EmbeddingCache.append(&bytes, UInt32(dim))
        EmbeddingCache.append(&bytes, UInt64(store.count))
        EmbeddingCache.append(&bytes, UInt32(key.utf8.count))
        bytes += Array(key.utf8)
        for h in store.keys.sorted() {
            let r = store[h]!
            EmbeddingCache.append(&bytes, h)
            EmbeddingCache.append(&bytes, r.tokens)
            EmbeddingCache.append(&bytes, UInt32(r.truncated ? 1 : 0))
            // Hosts are little-endian (x86-64, arm64): the floats go in as they are in memory.
            r.values.withUnsafeBytes { bytes += $0 }
        }
        var data = Data(bytes)
        data.append(contentsOf: withUnsafeBytes(of: EmbeddingCache.fnv1a(data).littleEndian) { Array($0) })
        try data.write(to: URL(fileURLWithPath: path(forKey: key)), options: .atomic)
    }

    static func decode(_ data: Data, key: String, dim: Int) throws -> [UInt64: Record] {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [UInt64: Record] in
            func u<T: FixedWidthInteger>(_ o: Int, _: T.Type) -> T { T(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: T.self)) }
            guard raw.count >= 36, Array(raw[0 ..< 8]) == Array("SFTEMBED".utf8) else { throw DatasetError("not an embedding cache file") }
            guard u(8, UInt32.self) == 1 else { throw DatasetError("version \(u(8, UInt32.self)) is not 1") }
            guard u(12, UInt32.self) == UInt32(dim) else { throw DatasetError("dimension \(u(12, UInt32.self)) differs from the model's \(dim)") }
            let n = u(16, UInt64.self), k = Int(u(24, UInt32.self))
            let recordBytes = 16 + 4 * dim
            guard n < 1 << 32, raw.count == 28 + k + Int(n) * recordBytes + 8 else { throw DatasetError("size \(raw.count) does not match its header") }
            guard u(raw.count - 8, UInt64.self) == fnv1a(data.prefix(raw.count - 8)) else { throw DatasetError("checksum mismatch") }
            guard String(decoding: raw[28 ..< 28 + k], as: UTF8.self) == key else { throw DatasetError("key differs (hash collision)") }
            var values = [Float](repeating: 0, count: Int(n) * dim)
            values.withUnsafeMutableBytes { dst in
                for r in 0 ..< Int(n) {
                    let o = 28 + k + r * recordBytes + 16
                    dst.baseAddress!.advanced(by: r * dim * 4).copyMemory(from: raw.baseAddress!.advanced(by: o), byteCount: dim * 4)
                }
            }
            var out: [UInt64: Record] = [:]
            out.reserveCapacity(Int(n))
            for r in 0 ..< Int(n) {
                let o = 28 + k + r * recordBytes
                out[u(o, UInt64.self)] = Record(tokens: u(o + 8, UInt32.self), truncated: u(o + 12, UInt32.self) != 0,
                                                values: values[r * dim ..< (r + 1) * dim])
            }
            return out
        }
    }

    static func append<T: FixedWidthInteger>(_ d: inout [UInt8], _ v: T) { withUnsafeBytes(of: v.littleEndian) { d += $0 } }

    public static func fnv1a(_ data: Data) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { raw in for byte in raw { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 } }
        return h
    }

    static func hex(_ v: UInt64) -> String { String(format: "%016llx", v) }
}
