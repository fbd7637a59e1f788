/// Which build of the kernels a CPU can run, and which one it should run.
///
/// Swift has no per-function runtime dispatch, so SafeTune ships one complete build per CPU level
/// (see Docs/DEPLOYMENT.md) and a launcher that picks the best one the running CPU supports, from
/// the feature flags the kernel reports in /proc/cpuinfo (which also says the OS saves the wide
/// registers: a flag is listed only when the kernel enabled it). Foundation-free, so the launcher
/// stays a small static binary.
public struct CPUVariant: Equatable, Sendable {
    /// Directory name of the build (`libexec/<name>/` in dist).
    public let name: String
    /// `SAFETUNE_CPU` value the build uses (`-target-cpu`); nil for the portable build.
    public let targetCPU: String?
    /// /proc/cpuinfo flags every instruction of that target needs.
    public let requiredFlags: [String]

    public init(name: String, targetCPU: String?, requiredFlags: [String]) {
        self.name = name; self.targetCPU = targetCPU; self.requiredFlags = requiredFlags
    }
}

public enum CPUSelect {
    /// x86-64 builds, best first. The flag lists are what LLVM's `haswell` and `skylake-avx512`
    /// targets may emit (cpuinfo spells LZCNT as `abm`).
    public static let x86Variants: [CPUVariant] = [
        CPUVariant(name: "avx512", targetCPU: "skylake-avx512",
                   requiredFlags: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl",
                                   "avx2", "avx", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "popcnt",
                                   "sse4_2", "ssse3"]),
        CPUVariant(name: "avx2", targetCPU: "haswell",
                   requiredFlags: ["avx2", "avx", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "popcnt", "sse4_2", "ssse3"]),
        CPUVariant(name: "portable", targetCPU: nil, requiredFlags: []),
    ]
    /// arm64 builds: NEON (Advanced SIMD) is part of the base architecture.
    public static let armVariants: [CPUVariant] = [CPUVariant(name: "neon", targetCPU: nil, requiredFlags: [])]

    public static func variants(arch: String) -> [CPUVariant] {
        arch == "arm64" || arch == "aarch64" ? armVariants : x86Variants
    }

    /// Feature flags of the first processor in /proc/cpuinfo text (`flags` on x86, `Features` on arm).
    public static func flags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                .split(separator: "\t").joined()
            if key == "flags" || key == "Features" {
                return Set(line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
            }
        }
        return []
    }

    /// The flags of `variant` that `flags` lacks (empty: the CPU runs it).
    public static func missing(_ variant: CPUVariant, flags: Set<String>) -> [String] {
        variant.requiredFlags.filter { !flags.contains($0) }
    }

    /// The best variant among `available` (names) that the CPU supports, or nil. `forced`, when set,
    /// must be available and supported, else the reason comes back as `error`.
    public static func choose(flags: Set<String>, arch: String, available: Set<String>,
                              forced: String? = nil) -> (variant: CPUVariant?, error: String?) {
        let all = variants(arch: arch)
        if let forced, !forced.isEmpty {
            guard let v = all.first(where: { $0.name == forced }) else {
                return (nil, "SAFETUNE_VARIANT=\(forced) is not a build for \(arch) (builds: \(all.map(\.name).joined(separator: ", ")))")
            }
            guard available.contains(forced) else { return (nil, "SAFETUNE_VARIANT=\(forced): that build is not installed") }
            let lack = missing(v, flags: flags)
            guard lack.isEmpty else { return (nil, "SAFETUNE_VARIANT=\(forced): this CPU lacks \(lack.joined(separator: " "))") }
            return (v, nil)
        }
        for v in all where available.contains(v.name) && missing(v, flags: flags).isEmpty { return (v, nil) }
        return (nil, "no installed build runs on this CPU (installed: \(available.sorted().joined(separator: ", ")))")
    }
}
