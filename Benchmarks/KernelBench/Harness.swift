import Dispatch
import Foundation
import Kernels

/// A value in a benchmark record's parameter list.
enum Param: CustomStringConvertible {
    case int(Int), bool(Bool), string(String)
    var json: Any {
        switch self { case .int(let v): return v; case .bool(let v): return v; case .string(let v): return v }
    }
    var description: String {
        switch self { case .int(let v): return "\(v)"; case .bool(let v): return v ? "T" : "N"; case .string(let v): return v }
    }
}

/// One benchmark case: setup in `make` (untimed), which verifies the kernel once and returns
/// the closure to time. FLOPs and bytes use the formulas in the kernel's doc comment.
struct BenchCase {
    var name: String
    var params: [(String, Param)]
    var flops: Double
    var bytes: Double
    /// Bandwidth-bound cases are judged in GB/s, compute-bound ones in GFLOP/s.
    var bandwidthBound = false
    /// Builds inputs for `threads` workers; returns (verified, timed body).
    var make: (_ threads: Int) -> (verified: Bool, run: () -> Void)
    /// Accuracy figures a case measures while verifying (e.g. "relErr"), reported next to the
    /// timing in the JSON record (not part of the case's identity).
    var metrics = CaseMetrics()

    var label: String { "\(name)(" + params.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + ")" }
}

/// Values a case's `make` records for its JSON record (a reference, so the closure can fill it).
final class CaseMetrics {
    var values: [String: Double] = [:]
}

struct BenchResult {
    var bench: BenchCase
    var threads: Int
    var samples: [Double]  // seconds, sorted
    var cpuPerCall: Double  // process CPU seconds per call, all threads
    var verified: Bool
    var median: Double { samples[samples.count / 2] }
    var gflops: Double { bench.flops / median / 1e9 }
    var gbps: Double { bench.bytes / median / 1e9 }

    var json: [String: Any] {
        var o: [String: Any] = ["name": bench.name, "threads": threads, "iterations": samples.count,
                                "minNs": Int(samples[0] * 1e9), "medianNs": Int(median * 1e9),
                                "p90Ns": Int(samples[min(samples.count - 1, samples.count * 9 / 10)] * 1e9),
                                "gflops": round2(gflops), "gflopsPerCore": round2(gflops / Double(threads)),
                                "gbps": round2(gbps), "verified": verified, "cpuNsPerCall": Int(cpuPerCall * 1e9),
                                "bound": bench.bandwidthBound ? "bandwidth" : "compute"]
        for (k, v) in bench.params { o[k] = v.json }
        for (k, v) in bench.metrics.values { o[k] = v }
        return o
    }
}

func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }

/// Keeps the optimiser from deleting or hoisting benchmarked work.
@_optimize(none) @inline(never)
func blackHole<T>(_ x: T) {}

enum Harness {
    /// Times `run` after 3 warm-up calls until `minTime` has elapsed and at least 5 samples exist.
    /// Returns wall-clock samples (sorted) and the process CPU seconds per call (all threads);
    /// on a busy machine the CPU time of a one-thread run is the steadier figure.
    static func time(minTime: Double, maxSamples: Int = 10_000, _ run: () -> Void) -> (wall: [Double], cpu: Double) {
        for _ in 0 ..< 3 { run() }
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu0 = cpuSeconds()
        while samples.count < 5 || (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < minTime && samples.count < maxSamples) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            run()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return (samples.sorted(), (cpuSeconds() - cpu0) / Double(samples.count))
    }

    static func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func machine() -> [String: Any] {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "unknown", flags: [String] = []
        for line in info.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name" && model == "unknown" { model = parts[1] }
            if (parts[0] == "flags" || parts[0] == "Features") && flags.isEmpty { flags = parts[1].split(separator: " ").map(String.init) }
        }
        let simd = flags.filter { ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "asimd"].contains($0) }
        return ["cpu": model, "logicalCores": ProcessInfo.processInfo.activeProcessorCount, "simdFlags": simd,
                "memoryGiB": round2(Double(ProcessInfo.processInfo.physicalMemory) / 1073741824)]
    }

    static func build() -> [String: Any] {
        var b: [String: Any] = ["version": BuildInfo.version, "isa": BuildInfo.isa, "fma": BuildInfo.fma,
                                "targetCPUSet": BuildInfo.targetCPUSet, "config": BuildInfo.configuration, "lanes": BuildInfo.lanes,
                                "tiles": ["MR": Tiling.MR, "NR": Tiling.NR, "KC": Tiling.KC, "MC": Tiling.MC, "NC": Tiling.NC]]
        if let l = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"], !l.isEmpty { b["launcher"] = l }
        return b
    }
}
