import Foundation

/// A contiguous run of rows of a tall n x d Float matrix: row `firstRow + r` starts at `base + r * ld`.
public struct RowBlock {
    public let base: UnsafePointer<Float>
    public let firstRow: Int
    public let rows: Int
    public let ld: Int
    public init(base: UnsafePointer<Float>, firstRow: Int, rows: Int, ld: Int) {
        self.base = base; self.firstRow = firstRow; self.rows = rows; self.ld = ld
    }
}

/// A tall matrix presented as row blocks, so that the SVD and statistics kernels can stream it
/// (from memory, a memory-mapped file, or a generator) without holding all of it at once.
///
/// Contract: `forEachBlock` visits every row exactly once, in increasing `firstRow` order, with
/// `rows >= 1`, `ld >= columnCount`; the pointers stay valid only during the call to `body`.
/// It may be called several times (the randomized SVD makes 2q + 2 passes) and must yield the
/// same values every time. Callers never run kernels on a block from inside a parallel region;
/// `body` itself may call multithreaded GEMM.
public protocol RowBlockSource {
    var rowCount: Int { get }
    var columnCount: Int { get }
    func forEachBlock(_ body: (RowBlock) -> Void)
}

/// An in-memory row-major matrix (`ld >= cols`) cut into blocks of `blockRows` rows.
public struct MatrixRows: RowBlockSource {
    public let base: UnsafePointer<Float>
    public let rowCount: Int
    public let columnCount: Int
    public let ld: Int
    public let blockRows: Int
    /// The pointer must outlive every use of this value.
    public init(_ base: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int? = nil, blockRows: Int = .max) {
        precondition(rows >= 0 && cols >= 1, "MatrixRows: bad shape \(rows) x \(cols)")
        precondition((ld ?? cols) >= cols, "MatrixRows: ld \(ld ?? cols) < cols \(cols)")
        precondition(blockRows >= 1, "MatrixRows: blockRows must be positive")
        self.base = base; rowCount = rows; columnCount = cols; self.ld = ld ?? cols; self.blockRows = blockRows
    }
    public func forEachBlock(_ body: (RowBlock) -> Void) {
        var r = 0
        while r < rowCount {
            let nb = min(blockRows, rowCount - r)
            body(RowBlock(base: base + r * ld, firstRow: r, rows: nb, ld: ld))
            r += nb
        }
    }
}

/// Rows produced by a closure (a generator, a decoder, a list of shards): `visit(emit)` must call
/// `emit` once per block, honouring the `RowBlockSource` contract (checked: out-of-order or
/// miscounted blocks stop the program with a message rather than computing garbage).
public struct ClosureRows: RowBlockSource {
    public let rowCount: Int
    public let columnCount: Int
    let visit: ((RowBlock) -> Void) -> Void
    public init(rows: Int, cols: Int, visit: @escaping ((RowBlock) -> Void) -> Void) {
        precondition(rows >= 0 && cols >= 1, "ClosureRows: bad shape \(rows) x \(cols)")
        rowCount = rows; columnCount = cols; self.visit = visit
    }
    public func forEachBlock(_ body: (RowBlock) -> Void) {
        var next = 0
        let cols = columnCount, total = rowCount
        withoutActuallyEscaping(body) { body in
            visit { block in
                precondition(block.firstRow == next && block.rows >= 1 && block.ld >= cols
                             && block.firstRow + block.rows <= total,
                             "ClosureRows: block (first \(block.firstRow), rows \(block.rows), ld \(block.ld)) out of order or out of range")
                body(block)
                next += block.rows
            }
        }
        precondition(next == total, "ClosureRows: blocks covered \(next) of \(total) rows")
    }
}

/// A raw little-endian float32 file (optionally after a header of `offset` bytes) of `rows x cols`,
/// memory-mapped and streamed in blocks; only the pages being read are resident.
public struct MappedRows: RowBlockSource {
    public enum MapError: Error, CustomStringConvertible {
        case badShape(String)
        public var description: String { switch self { case .badShape(let s): return "MappedRows: \(s)" } }
    }
    public let rowCount: Int
    public let columnCount: Int
    public let blockRows: Int
    let data: Data
    let offset: Int

    /// Maps `url`; `rows` defaults to what the file holds. Throws when the file is shorter than
    /// `offset + rows * cols * 4` bytes or `offset` is not a multiple of 4.
    public init(url: URL, cols: Int, rows: Int? = nil, offset: Int = 0, blockRows: Int = 4096) throws {
        guard cols >= 1, offset >= 0, offset % 4 == 0, blockRows >= 1 else {
            throw MapError.badShape("cols \(cols), offset \(offset), blockRows \(blockRows)")
        }
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        let available = max(0, data.count - offset) / 4 / cols
        let n = rows ?? available
        guard n >= 0, n <= available else {
            throw MapError.badShape("\(url.path) holds \(available) rows of \(cols) floats after \(offset) bytes, asked for \(n)")
        }
        self.data = data; self.offset = offset; rowCount = n; columnCount = cols; self.blockRows = blockRows
    }

    public func forEachBlock(_ body: (RowBlock) -> Void) {
        data.withUnsafeBytes { raw in
            guard rowCount > 0, let start = raw.baseAddress else { return }
            let p = (start + offset).assumingMemoryBound(to: Float.self)
            MatrixRows(p, rows: rowCount, cols: columnCount, blockRows: blockRows).forEachBlock(body)
        }
    }
}
