import Foundation
import Kernels

/// One line for `--version`: the tool, SafeTune's version, the kernels' build and, when the dist
/// launcher started this process, which variant it picked and why.
public func versionText(_ tool: String) -> String {
    var s = "\(tool) \(BuildInfo.version) (kernels: \(BuildInfo.isa), \(BuildInfo.configuration)"
    if let launch = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"], !launch.isEmpty { s += "; launcher chose \(launch)" }
    return s + ")"
}

/// The build facts every JSON report carries under "build" (with the worker count in use).
public func buildReport() -> [String: Any] {
    var b: [String: Any] = ["version": BuildInfo.version, "isa": BuildInfo.isa, "fma": BuildInfo.fma,
                            "configuration": BuildInfo.configuration, "lanes": BuildInfo.lanes,
                            "threads": Parallel.defaultWorkers]
    if let launch = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"], !launch.isEmpty { b["launcher"] = launch }
    return b
}

/// The machine a report was made on: CPU model, logical cores, SIMD flags, memory.
public func machineReport() -> [String: Any] {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    var model = "unknown", flags: [String] = []
    for line in info.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { continue }
        if (parts[0] == "model name" || parts[0] == "Model") && model == "unknown" { model = parts[1] }
        if (parts[0] == "flags" || parts[0] == "Features") && flags.isEmpty { flags = parts[1].split(separator: " ").map(String.init) }
    }
    let simd = flags.filter { ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "asimd"].contains($0) }
    return ["cpu": model, "logicalCores": ProcessInfo.processInfo.activeProcessorCount, "simdFlags": simd,
            "memoryGiB": (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 100).rounded() / 100]
}

/// `machineReport()` as one line for logs.
public func machineLine() -> String {
    let m = machineReport()
    return "\(m["cpu"]!), \(m["logicalCores"]!) cores, SIMD \((m["simdFlags"] as! [String]).joined(separator: " "))"
}
