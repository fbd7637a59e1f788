import Dispatch
import Foundation

#if os(Linux)

/// Persistent worker threads that spin briefly between parallel regions.
///
/// `DispatchQueue.concurrentPerform` wakes a pool thread per region; on a virtualised 2-core
/// machine that costs 15-45 µs (measured: two 31 µs halves took 60 µs in parallel against 62 µs
/// serially), while single-token decode runs about 150 regions of 10-50 µs per token. Here the
/// workers wait for the next region by polling a spin-locked epoch for about 100 µs before they
/// sleep on a semaphore, so back-to-back regions start in well under a microsecond.
///
/// One region at a time: a caller that finds the pool busy (another thread's region) or asks for
/// more workers than it has falls back to `concurrentPerform`. Shared state is read and written
/// only under the pthread spin lock, whose lock/unlock order the memory accesses around them.
final class SpinPool: @unchecked Sendable {
    /// Threads besides the caller.
    let helpers: Int
    /// Heap-allocated so the C calls always see the same address (never a Swift inout temporary).
    private let lock = UnsafeMutablePointer<pthread_spinlock_t>.allocate(capacity: 1)
    /// Serialises regions (try-locked: a busy pool means fall back).
    private let owner = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var epoch = 0
    private var job: UnsafeRawPointer?
    private var jobWorkers = 0
    private var remaining = 0
    private var sleeping: [Bool]
    private let wake: [DispatchSemaphore]
    /// Lock-protected polls before a worker sleeps (about 100 µs).
    private let spinPolls = 2500

    init(helpers: Int) {
        self.helpers = helpers
        sleeping = [Bool](repeating: false, count: helpers)
        wake = (0 ..< helpers).map { _ in DispatchSemaphore(value: 0) }
        pthread_spin_init(lock, 0)
        pthread_mutex_init(owner, nil)
        for w in 0 ..< helpers {
            let t = Thread { [unowned self] in self.workerLoop(w) }
            t.stackSize = 8 << 20
            t.name = "safetune-worker-\(w + 1)"
            t.start()
        }
    }

    /// The process-wide pool, sized for the machine's cores.
    static let shared = SpinPool(helpers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    private typealias Body = (Int, Int) -> Void

    /// Runs body(ith, nth) for ith in 0..<nth (the caller takes ith = 0); false if the pool cannot
    /// take the region (busy or too few threads), in which case nothing ran.
    func run(_ nth: Int, _ body: (Int, Int) -> Void) -> Bool {
        guard nth - 1 <= helpers, pthread_mutex_trylock(owner) == 0 else { return false }
        defer { pthread_mutex_unlock(owner) }
        withoutActuallyEscaping(body) { escapable in
            var boxed: Body = escapable
            withUnsafePointer(to: &boxed) { ptr in
                pthread_spin_lock(lock)
                job = UnsafeRawPointer(ptr)
                jobWorkers = nth
                remaining = nth - 1
                epoch &+= 1
                var toWake: [Int] = []
                for w in 0 ..< nth - 1 where sleeping[w] { sleeping[w] = false; toWake.append(w) }
                pthread_spin_unlock(lock)
                for w in toWake { wake[w].signal() }
                escapable(0, nth)
                var polls = 0
                while true {
                    pthread_spin_lock(lock)
                    let left = remaining
                    pthread_spin_unlock(lock)
                    if left == 0 { break }
                    // A woken worker may share this CPU for a while (wake-affine placement): give it
                    // the CPU now and then instead of spinning out a whole time slice.
                    polls += 1
                    if polls & 63 == 0 { sched_yield() }
                }
                pthread_spin_lock(lock)
                job = nil
                pthread_spin_unlock(lock)
            }
        }
        return true
    }

    private func workerLoop(_ w: Int) {
        var seen = 0
        var polls = 0
        while true {
            pthread_spin_lock(lock)
            let e = epoch, j = job, nth = jobWorkers
            pthread_spin_unlock(lock)
            if e != seen {
                seen = e
                polls = 0
                if let j, w + 1 < nth {
                    j.assumingMemoryBound(to: Body.self).pointee(w + 1, nth)
                    pthread_spin_lock(lock)
                    remaining -= 1
                    pthread_spin_unlock(lock)
                }
                continue
            }
            polls += 1
            if polls & 63 == 0 { sched_yield() }  // as in `run`: never starve a thread on the same CPU
            if polls >= spinPolls {
                polls = 0
                pthread_spin_lock(lock)
                let idle = epoch == seen
                if idle { sleeping[w] = true }
                pthread_spin_unlock(lock)
                if idle { wake[w].wait() }
            }
        }
    }
}
#endif
