import Foundation
import Kernels

/// The map/reduce files of `saft embed --shard i/N`, `saft fit` and `saft score --shard i/N`, all in
/// one work directory (Docs/SAFT.md, "Scale past one machine"). Shard i of N holds rows
/// [i·n/N, (i+1)·n/N) of the data file. Per shard and block:
///   embed-i-of-N.json           manifest (rows, first row, dim, blocks, position, model identity, timings)
///   embed-i-of-N.b<B>.f32       the shard's embeddings, rows x dim little-endian float32
///   embed-i-of-N.b<B>.ststats   mergeable moments (n, Σx, XᵀX; Kernels/Linalg/StatsFile.swift)
/// and `filter.json` (a `SAFTFilter`) written by fit.
public enum SAFTShards {
    public struct Manifest: Codable, Sendable, Equatable {
        public var shard: Int
        public var shards: Int
        public var firstRow: Int
        public var rows: Int
        public var dataRows: Int
        public var dim: Int
        public var blocks: [Int]
        public var position: String
        public var maxTokens: Int
        public var modelIdentity: String
        public var template: String
        public var tokens: Int
        public var truncated: Int
        public var embedSeconds: Double

        public init(shard: Int, shards: Int, firstRow: Int, rows: Int, dataRows: Int, dim: Int, blocks: [Int], position: String,
                    maxTokens: Int, modelIdentity: String, template: String, tokens: Int, truncated: Int, embedSeconds: Double) {
            self.shard = shard; self.shards = shards; self.firstRow = firstRow; self.rows = rows; self.dataRows = dataRows
            self.dim = dim; self.blocks = blocks; self.position = position; self.maxTokens = maxTokens
            self.modelIdentity = modelIdentity; self.template = template; self.tokens = tokens; self.truncated = truncated
            self.embedSeconds = embedSeconds
        }
    }

    /// Parses "i/N" (0 <= i < N).
    public static func parse(_ text: String) throws -> (index: Int, count: Int) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else {
            throw DatasetError("--shard '\(text)': expected i/N with 0 <= i < N (e.g. 0/4)")
        }
        return (i, n)
    }

    public static func rows(shard i: Int, of n: Int, total: Int) -> Range<Int> { (i * total / n) ..< ((i + 1) * total / n) }

    static func base(_ dir: String, _ i: Int, _ n: Int) -> String { dir + "/embed-\(i)-of-\(n)" }

    /// Writes one shard: embeddings and moments per block, then the manifest last (its presence
    /// means the shard is complete). Every file is written atomically.
    public static func write(_ e: Embeddings, manifest m: Manifest, to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let b = base(dir, m.shard, m.shards)
        for block in m.blocks {
            let x = e.byBlock[block]!
            var data = Data(capacity: x.count * 4)
            for v in x { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            try data.write(to: URL(fileURLWithPath: "\(b).b\(block).f32"), options: .atomic)
            var stats = CovarianceStats(dimension: e.dim)
            if e.rows > 0 {
                x.withUnsafeBufferPointer { stats.accumulate(MatrixRows($0.baseAddress!, rows: e.rows, cols: e.dim)) }
            }
            try StatsFile.write(stats, to: URL(fileURLWithPath: "\(b).b\(block).ststats"))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(m).write(to: URL(fileURLWithPath: "\(b).json"), options: .atomic)
    }

    public static func manifest(_ dir: String, shard i: Int, of n: Int) throws -> Manifest {
        let path = base(dir, i, n) + ".json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError("shard \(i)/\(n) is missing: no \(path) (run `saft embed --shard \(i)/\(n)` first)")
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch { throw DatasetError("\(path): bad manifest (\(error))") }
    }

    /// All manifests of the work directory; they must form one complete, consistent set.
    public static func manifests(_ dir: String) throws -> [Manifest] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let counts = Set(names.compactMap { name -> Int? in
            guard name.hasPrefix("embed-"), name.hasSuffix(".json"), let r = name.range(of: "-of-") else { return nil }
            return Int(name[r.upperBound...].dropLast(5))
        })
        guard counts.count == 1, let n = counts.first else {
            throw DatasetError(counts.isEmpty ? "\(dir) holds no shard manifests (embed-i-of-N.json)"
                                              : "\(dir) mixes shard counts \(counts.sorted()): use one work directory per run")
        }
        let all = try (0 ..< n).map { try manifest(dir, shard: $0, of: n) }
        let first = all[0]
        for m in all {
            guard m.dim == first.dim, m.blocks == first.blocks, m.position == first.position, m.maxTokens == first.maxTokens,
                  m.modelIdentity == first.modelIdentity, m.template == first.template, m.dataRows == first.dataRows,
                  m.firstRow == rows(shard: m.shard, of: n, total: m.dataRows).lowerBound
            else { throw DatasetError("shard \(m.shard)/\(n) was embedded with other settings, model or data than shard 0") }
        }
        return all
    }

    /// The shard's embeddings at `blocks`.
    public static func embeddings(_ dir: String, _ m: Manifest, blocks: [Int]) throws -> [Int: [Float]] {
        var out: [Int: [Float]] = [:]
        for block in blocks {
            guard m.blocks.contains(block) else { throw DatasetError("shard \(m.shard)/\(m.shards) was not embedded at block \(block)") }
            let path = "\(base(dir, m.shard, m.shards)).b\(block).f32"
            guard let data = FileManager.default.contents(atPath: path), data.count == m.rows * m.dim * 4 else {
                throw DatasetError("\(path): missing or not \(m.rows) x \(m.dim) float32 values")
            }
            var x = [Float](repeating: 0, count: m.rows * m.dim)
            data.withUnsafeBytes { raw in
                for i in 0 ..< x.count { x[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
            out[block] = x
        }
        return out
    }

    /// The moments of every shard at `block`, merged.
    public static func mergedStats(_ dir: String, _ ms: [Manifest], block: Int) throws -> CovarianceStats {
        try CovarianceStats.merged(ms.map { m in
            let path = "\(base(dir, m.shard, m.shards)).b\(block).ststats"
            do { return try StatsFile.readMoments(from: URL(fileURLWithPath: path)) } catch { throw DatasetError("\(path): \(error)") }
        })
    }
}
