import Dispatch
import Foundation

/// The only place in the package that starts parallel work.
///
/// Every parallel kernel splits *independent outputs* into contiguous ranges (ggml's ith/nth
/// rule) and never splits a reduction, so results are bitwise identical for any worker count.
/// Kernels never call a parallel kernel from inside a parallel region.
public enum Parallel {
    /// Workers used when a kernel is called with `workers: nil`. Defaults to the active cores;
    /// executables set it from `--threads` or `SAFETUNE_THREADS`.
    nonisolated(unsafe) public static var defaultWorkers: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Resolves an optional worker count to a positive number.
    @inline(__always)
    public static func resolve(_ workers: Int?) -> Int {
        max(1, workers ?? defaultWorkers)
    }

    /// The half-open range of `count` items owned by worker `ith` of `nth` (contiguous, balanced).
    @inline(__always)
    public static func range(_ ith: Int, of nth: Int, count: Int) -> Range<Int> {
        let base = count / nth, extra = count % nth
        let lo = ith * base + min(ith, extra)
        return lo ..< lo + base + (ith < extra ? 1 : 0)
    }

    /// Runs `body(ith, nth)` on `nth = min(workers, tasks)` workers; returns when all are done.
    /// With one worker the body runs inline on the calling thread; otherwise on the spinning
    /// `SpinPool` (Linux), or `concurrentPerform` when that pool is busy or too small.
    @inline(__always)
    public static func run(workers: Int?, maxUseful: Int = .max, _ body: (_ ith: Int, _ nth: Int) -> Void) {
        let nth = max(1, min(resolve(workers), maxUseful))
        if nth == 1 { body(0, 1); return }
        #if os(Linux)
        if SpinPool.shared.run(nth, body) { return }
        #endif
        DispatchQueue.concurrentPerform(iterations: nth) { ith in body(ith, nth) }
    }

    /// Runs `body(task)` for every task in `0..<count`. Each worker starts on its own contiguous
    /// range (so a GEMM worker keeps its B panels in its own L2), a few tasks at a time, and one
    /// that runs out takes tasks from the end of the fullest other range. On a virtual machine one
    /// vCPU can run 25-40% slower than the other for seconds at a time (another guest on its
    /// core; no steal time shows), and a fixed split makes every region wait for the slow one.
    /// Which worker runs a task never changes what the task computes: results stay bitwise equal.
    @inline(__always)
    public static func forEach(_ count: Int, workers: Int?, _ body: (_ task: Int) -> Void) {
        if count <= 0 { return }
        let nth = max(1, min(resolve(workers), count))
        if nth == 1 { for t in 0 ..< count { body(t) }; return }
        let ranges = TaskRanges(count: count, parts: nth, grain: max(1, count / (nth * 8)))
        run(workers: nth) { ith, _ in
            while let r = ranges.claim(ith) { for t in r { body(t) } }
        }
    }
}

/// Per-worker task ranges for `Parallel.forEach`: claimed from the front by their owner and from
/// the back by thieves, under one lock (a handful of claims per worker per region).
final class TaskRanges: @unchecked Sendable {
    private let parts: Int, grain: Int
    private let front: UnsafeMutablePointer<Int>, back: UnsafeMutablePointer<Int>
    #if os(Linux)
    private let lock = UnsafeMutablePointer<pthread_spinlock_t>.allocate(capacity: 1)
    #else
    private let lock = NSLock()
    #endif

    init(count: Int, parts: Int, grain: Int) {
        self.parts = parts
        self.grain = grain
        front = .allocate(capacity: parts)
        back = .allocate(capacity: parts)
        for i in 0 ..< parts {
            let r = Parallel.range(i, of: parts, count: count)
            front[i] = r.lowerBound
            back[i] = r.upperBound
        }
        #if os(Linux)
        pthread_spin_init(lock, 0)
        #endif
    }

    deinit {
        #if os(Linux)
        pthread_spin_destroy(lock)
        lock.deallocate()
        #endif
        front.deallocate()
        back.deallocate()
    }

    /// The next tasks for worker `ith`, or nil when every range is empty.
    @inline(__always) func claim(_ ith: Int) -> Range<Int>? {
        #if os(Linux)
        pthread_spin_lock(lock); defer { pthread_spin_unlock(lock) }
        #else
        lock.lock(); defer { lock.unlock() }
        #endif
        if front[ith] < back[ith] {
            let lo = front[ith]
            front[ith] = min(back[ith], lo + grain)
            return lo ..< front[ith]
        }
        var victim = -1, most = 0
        for v in 0 ..< parts where back[v] - front[v] > most { victim = v; most = back[v] - front[v] }
        if victim < 0 { return nil }
        let hi = back[victim]
        back[victim] = max(front[victim], hi - grain)
        return back[victim] ..< hi
    }
}
