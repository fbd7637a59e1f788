import Foundation

/// Pair table for the merge loop: (left id, right id) -> (rank, merged id). Lower rank merges first; among
/// equal ranks the leftmost pair merges first (the rule of llama.cpp, Hugging Face tokenizers and SentencePiece).
/// Byte-level BPE ranks are merge-list positions; SentencePiece ranks are scores sorted descending.
package struct MergeTable {
    private var table = U64Map()

    package init() {}

    @inline(__always) private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Adds a merge unless the pair already has one (the first, lowest-ranked, entry wins).
    package mutating func add(_ a: Int32, _ b: Int32, rank: UInt32, merged: Int32) {
        let k = Self.key(a, b)
        table.insertNew(k, UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)))
    }

    package var count: Int { table.count }

    /// (rank, merged) or nil. Negative ids (unknown symbols) never merge.
    @inline(__always) package func lookup(_ a: Int32, _ b: Int32) -> (rank: UInt32, merged: Int32)? {
        guard a >= 0, b >= 0, let v = table.get(Self.key(a, b)) else { return nil }
        return (UInt32(truncatingIfNeeded: v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
    }

    /// Merges `syms` in place until no adjacent pair has a merge. Short words use an incremental scan
    /// (O(n²) compares, O(n) lookups); long ones a binary heap with lazy deletion (O(n log n)).
    package func merge(_ syms: inout [Int32]) {
        if syms.count < 2 { return }
        if syms.count <= 48 { mergeScan(&syms) } else { mergeHeap(&syms) }
    }

    /// Incremental scan: keeps the rank of every adjacent pair, merges the minimum (leftmost on ties),
    /// then refreshes the two neighbouring pairs.
    package func mergeScan(_ syms: inout [Int32]) {
        let none = UInt64.max
        var ranks = [UInt64](repeating: none, count: syms.count - 1)
        var merged = [Int32](repeating: -1, count: syms.count - 1)
        for i in 0 ..< syms.count - 1 {
            if let m = lookup(syms[i], syms[i + 1]) { ranks[i] = UInt64(m.rank); merged[i] = m.merged }
        }
        while !ranks.isEmpty {
            var best = 0, bestRank = ranks[0]
            for i in 1 ..< ranks.count where ranks[i] < bestRank { best = i; bestRank = ranks[i] }
            if bestRank == none { break }
            syms[best] = merged[best]
            syms.remove(at: best + 1)
            ranks.remove(at: best); merged.remove(at: best)
            if best > 0 {
                if let m = lookup(syms[best - 1], syms[best]) { ranks[best - 1] = UInt64(m.rank); merged[best - 1] = m.merged }
                else { ranks[best - 1] = none }
            }
            if best < ranks.count {
                if let m = lookup(syms[best], syms[best + 1]) { ranks[best] = UInt64(m.rank); merged[best] = m.merged }
                else { ranks[best] = none }
            }
        }
    }

    /// Heap merge over a doubly linked list; stale heap entries are skipped when popped.
    package func mergeHeap(_ syms: inout [Int32]) {
        let n = syms.count
        var ids = syms
        var prev = (0 ..< n).map { $0 - 1 }
        var next = (0 ..< n).map { $0 + 1 }
        var alive = [Bool](repeating: true, count: n)
        // Heap entries ordered by (rank, left position): key = rank << 32 | position.
        struct Entry { var key: UInt64; var left: Int32; var right: Int32; var merged: Int32 }
        var heap: [Entry] = []
        heap.reserveCapacity(n)
        func push(_ e: Entry) {
            heap.append(e)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if heap[p].key <= heap[i].key { break }
                heap.swapAt(p, i); i = p
            }
        }
        func pop() -> Entry {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count && heap[l].key < heap[m].key { m = l }
                    if r < heap.count && heap[r].key < heap[m].key { m = r }
                    if m == i { break }
                    heap.swapAt(i, m); i = m
                }
            }
            return top
        }
        func consider(_ i: Int) {
            let j = next[i]
            guard j < n, let m = lookup(ids[i], ids[j]) else { return }
            push(Entry(key: UInt64(m.rank) << 32 | UInt64(i), left: ids[i], right: ids[j], merged: m.merged))
        }
        for i in 0 ..< n - 1 { consider(i) }
        while !heap.isEmpty {
            let e = pop()
            let i = Int(UInt32(truncatingIfNeeded: e.key))
            let j = next[i]
            guard alive[i], j < n, ids[i] == e.left, ids[j] == e.right else { continue }
            ids[i] = e.merged
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0 { consider(prev[i]) }
            consider(i)
        }
        syms.removeAll(keepingCapacity: true)
        var i = 0
        while i < n { syms.append(ids[i]); i = next[i] }
    }

    /// Test oracle: recompute every pair each round, merge the first minimum. O(n²) lookups.
    package func mergeReference(_ syms: inout [Int32]) {
        while syms.count >= 2 {
            var best = -1
            var bestRank = UInt32.max
            var bestMerged: Int32 = -1
            for i in 0 ..< syms.count - 1 {
                if let m = lookup(syms[i], syms[i + 1]), best < 0 || m.rank < bestRank {
                    best = i; bestRank = m.rank; bestMerged = m.merged
                }
            }
            if best < 0 { return }
            syms[best] = bestMerged
            syms.remove(at: best + 1)
        }
    }
}
