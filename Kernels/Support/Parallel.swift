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

    /// Runs `body(task)` for every task in `0..<count`, tasks split into contiguous ranges.
    @inline(__always)
    public static func forEach(_ count: Int, workers: Int?, _ body: (_ task: Int) -> Void) {
        if count <= 0 { return }
        run(workers: workers, maxUseful: count) { ith, nth in
            for t in range(ith, of: nth, count: count) { body(t) }
        }
    }
}
