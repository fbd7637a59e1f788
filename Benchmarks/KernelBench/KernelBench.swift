import Foundation
import Kernels

let usage = """
usage: kernel-bench [--all | --filter SUBSTRING] [--threads N[,N...]] [--json PATH] [--min-time SECONDS] [--quick] [--list]
       kernel-bench --dump FILE | --against FILE | --version

Times every kernel family on model-sized shapes, after checking each result against a reference.
  --filter S     run only cases whose label contains S (e.g. sgemm, sgemv, stream)
  --threads L    worker counts to run, comma-separated (default: all cores)
  --json PATH    also write the results as JSON: {"machine", "build", "date", "results": [...]}
  --min-time S   time each case for at least S seconds (default 0.5; median of the samples is reported)
  --quick        small shapes and 0.05 s per case: checks that the harness and kernels work
  --list         print the case labels and exit
  --all          every case (the default when no --filter is given)
  --dump FILE    write this build's results on seeded GEMM and attention problems (JSON) and exit
  --against FILE recompute those problems and check them against a dump from another build (another
                 CPU variant) within the kernels' error bounds; exit 1 on disagreement
  --version      print the version and the kernels' build (CPU variant) and exit
Build with `SAFETUNE_CPU=native swift build -c release` for meaningful numbers.
"""

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kernel-bench: \(message)\n\n\(usage)\n".utf8))
    exit(2)
}

/// The `kernel-bench` command; `arguments` are the options after the tool name.
public func kernelBenchMain(_ arguments: [String]) -> Never {
    var filter = "", jsonPath: String?, minTime = 0.5, quick = false, list = false, dumpPath: String?, againstPath: String?
    var threadList = [ProcessInfo.processInfo.activeProcessorCount]
    var args = arguments
    while !args.isEmpty {
        let arg = args.removeFirst()
        func value() -> String {
            guard !args.isEmpty else { fail("\(arg) needs a value") }
            return args.removeFirst()
        }
        switch arg {
        case "--filter": filter = value()
        case "--json": jsonPath = value()
        case "--min-time":
            let v = value()
            guard let t = Double(v), t >= 0 else { fail("--min-time: '\(v)' is not a non-negative number") }
            minTime = t
        case "--threads":
            let v = value()
            let parsed = v.split(separator: ",").compactMap { Int($0) }
            guard !parsed.isEmpty, parsed.count == v.split(separator: ",").count, parsed.allSatisfy({ $0 >= 1 }) else {
                fail("--threads: '\(v)' is not a list of positive integers")
            }
            threadList = parsed
        case "--quick", "--smoke": quick = true
        case "--list": list = true
        case "--all": filter = ""
        case "--dump": dumpPath = value()
        case "--against": againstPath = value()
        case "--version":
            var line = "kernel-bench \(BuildInfo.version) (kernels: \(BuildInfo.isa), \(BuildInfo.configuration)"
            if let l = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"] { line += "; launcher chose \(l)" }
            print(line + ")"); exit(0)
        case "-h", "--help": print(usage); exit(0)
        default: fail("unknown option '\(arg)'")
        }
    }
    if quick { minTime = min(minTime, 0.05) }
    do {
        if let path = dumpPath { try Agreement.dump(to: path); exit(0) }
        if let path = againstPath { exit(try Agreement.check(against: path) ? 0 : 1) }
    } catch {
        FileHandle.standardError.write(Data("kernel-bench: \(error.localizedDescription)\n".utf8))
        exit(1)
    }

    #if DEBUG
    if !list && !quick { fail("this is a debug build; benchmark a release build (swift build -c release)") }
    #endif

    let cases = allCases(quick: quick).filter { filter.isEmpty || $0.label.contains(filter) }
    if list { cases.forEach { print($0.label) }; exit(0) }
    if cases.isEmpty { fail("no case matches --filter '\(filter)'") }

    let build = Harness.build()
    let machine = Harness.machine()
    FileHandle.standardError.write(Data("kernel-bench: \(BuildInfo.isa) build (\(BuildInfo.configuration)), \(cases.count) cases x threads \(threadList)\n".utf8))
    FileHandle.standardError.write(Data("kernel-bench: machine \(machine["cpu"] ?? "?"), \(machine["logicalCores"] ?? "?") cores, SIMD flags \((machine["simdFlags"] as? [String] ?? []).joined(separator: " "))\(build["launcher"].map { "; launcher chose \($0)" } ?? "")\n".utf8))
    print(String(format: "%-58@ %7@ %10@ %9@ %9@ %8@", "case" as NSString, "threads" as NSString, "median ms" as NSString,
                 "GFLOP/s" as NSString, "GB/s" as NSString, "verified" as NSString))
    var results: [BenchResult] = []
    var allVerified = true
    for bench in cases {
        for threads in threadList {
            let (verified, run) = bench.make(threads)
            let (samples, cpu) = Harness.time(minTime: minTime) { run() }
            let r = BenchResult(bench: bench, threads: threads, samples: samples, cpuPerCall: cpu, verified: verified)
            results.append(r)
            allVerified = allVerified && verified
            print(String(format: "%-58@ %7d %10.3f %9.1f %9.2f %8@", bench.label as NSString, threads, r.median * 1e3,
                         r.gflops, r.gbps, (verified ? "yes" : "FAILED") as NSString)
                  + bench.metrics.values.sorted { $0.key < $1.key }.map { "  \($0.key)=" + String(format: "%.3g", $0.value) }.joined())
        }
    }

    if let path = jsonPath {
        let iso = ISO8601DateFormatter().string(from: Date())
        let doc: [String: Any] = ["schema": 1, "tool": "kernel-bench", "date": iso, "machine": machine,
                                  "build": build, "minTime": minTime, "results": results.map(\.json)]
        do {
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("kernel-bench: cannot write \(path): \(error.localizedDescription)\n".utf8))
            exit(1)
        }
    }
    if !allVerified {
        FileHandle.standardError.write(Data("kernel-bench: some kernels FAILED verification\n".utf8))
        exit(1)
    }
    exit(0)
}
