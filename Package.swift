// swift-tools-version:6.0
import PackageDescription
import Foundation

// MARK: - Build flavour
//
// Default builds are portable (baseline x86-64 / arm64) and pass every test.
// Speed needs the target CPU's FMA and vector width, which Swift only uses when told:
//
//   SAFETUNE_CPU=native swift build -c release       # tune for this machine
//   SAFETUNE_CPU=haswell swift build -c release      # AVX2 + FMA (any x86-64 since Haswell / Zen 1)
//   SAFETUNE_CPU=skylake-avx512 swift build -c release  # AVX-512 (Skylake-X, Ice Lake, Zen 4)
//
// The CPU name goes to `-target-cpu`; the defines tell the kernels which register
// file to block for (see Kernels/Support/Tiling.swift). Docs/BUILD.md explains the choice.
let targetCPU = Context.environment["SAFETUNE_CPU"].flatMap { $0.isEmpty ? nil : $0 }

/// ISA features implied by a `-target-cpu` name; `native` reads this machine's flags.
func features(of cpu: String) -> (fma: Bool, avx512: Bool) {
    let name = cpu.lowercased()
    #if arch(arm64)
    return (true, false)
    #else
    if name == "native" {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(info.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        return (flags.contains("fma"), flags.contains("avx512f"))
    }
    let avx512 = ["x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake", "icelake-server",
                  "icelake-client", "tigerlake", "sapphirerapids", "emeraldrapids", "graniterapids",
                  "rocketlake", "znver4", "znver5"]
    let fmaOnly = ["x86-64-v3", "haswell", "broadwell", "skylake", "alderlake", "raptorlake",
                   "znver1", "znver2", "znver3", "bdver2", "bdver3", "bdver4"]
    if avx512.contains(name) { return (true, true) }
    if fmaOnly.contains(name) { return (true, false) }
    return (false, false)
    #endif
}

var tuning: [SwiftSetting] = [
    // Kernels check shapes with `precondition` at their entry; the hot loops run on raw pointers.
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
if let cpu = targetCPU {
    let isa = features(of: cpu)
    tuning.append(.unsafeFlags(["-target-cpu", cpu]))
    if isa.fma { tuning.append(.define("KERNELS_FMA")) }
    if isa.avx512 { tuning.append(.define("KERNELS_AVX512")) }
    tuning.append(.define("KERNELS_TARGET_CPU_SET"))
}

let package = Package(
    name: "SafeTune",
    products: [
        .library(name: "Kernels", targets: ["Kernels"]),
        .library(name: "ModelFormats", targets: ["ModelFormats"]),
        .library(name: "Tokenization", targets: ["Tokenization"]),
        .library(name: "Llama", targets: ["Llama"]),
        .library(name: "SafetyTuning", targets: ["SafetyTuning"]),
        .executable(name: "generate", targets: ["generate"]),
        .executable(name: "saft", targets: ["saft"]),
        .executable(name: "finetune", targets: ["finetune"]),
        .executable(name: "sap", targets: ["sap"]),
        .executable(name: "seal", targets: ["seal"]),
        .executable(name: "make-demo-data", targets: ["make-demo-data"]),
        .executable(name: "evaluate", targets: ["evaluate"]),
        .executable(name: "train-judge", targets: ["train-judge"]),
        .executable(name: "safetune", targets: ["safetune"]),
        .executable(name: "safetune-launch", targets: ["safetune-launch"]),
        .executable(name: "kernel-bench", targets: ["kernel-bench"]),
        .executable(name: "engine-bench", targets: ["engine-bench"]),
        .executable(name: "train-bench", targets: ["train-bench"]),
    ],
    targets: [
        // MARK: - Kernels
        .target(name: "Kernels", path: "Kernels", swiftSettings: tuning),

        // MARK: - Engine
        // File parsing only (GGUF, safetensors, config.json); Foundation only.
        .target(name: "ModelFormats", path: "Sources/ModelFormats", swiftSettings: tuning),
        // Tokenizers (byte-level BPE, SentencePiece-style) and chat templates; Foundation only.
        .target(name: "Tokenization", path: "Sources/Tokenization", swiftSettings: tuning),
        // The Llama engine: loading, forward, generation, training.
        .target(name: "Llama", dependencies: ["Kernels", "ModelFormats", "Tokenization"], path: "Sources/Llama",
                swiftSettings: tuning),

        // The three methods (SAFT, SAP, SEAL), datasets and reports.
        .target(name: "SafetyTuning", dependencies: ["Llama", "Kernels", "Tokenization"], path: "Sources/SafetyTuning",
                swiftSettings: tuning),

        // MARK: - Runners
        // Argument parsing, atomic outputs and reports shared by the executables.
        .target(name: "RunSupport", dependencies: ["Kernels", "Llama"], path: "Sources/RunSupport", swiftSettings: tuning),
        // Each tool is a library (its command as a function) and a one-line executable, so that the
        // multi-call `safetune` binary can hold them all (dist ships one binary per CPU level).
        .target(name: "SaftTool", dependencies: ["SafetyTuning", "Llama", "Kernels", "RunSupport"], path: "Sources/Tools/saft",
                swiftSettings: tuning),
        .target(name: "GenerateTool", dependencies: ["Llama", "RunSupport"], path: "Sources/Tools/generate",
                swiftSettings: tuning),
        .target(name: "FinetuneTool", dependencies: ["SafetyTuning", "Llama", "RunSupport"], path: "Sources/Tools/finetune",
                swiftSettings: tuning),
        .target(name: "MakeDemoDataTool", dependencies: ["SafetyTuning", "RunSupport"], path: "Sources/Tools/make-demo-data",
                swiftSettings: tuning),
        .target(name: "EvaluateTool", dependencies: ["SafetyTuning", "Llama", "Kernels", "RunSupport"], path: "Sources/Tools/evaluate",
                swiftSettings: tuning),
        .target(name: "TrainJudgeTool", dependencies: ["SafetyTuning", "Llama", "ModelFormats", "Kernels", "RunSupport"], path: "Sources/Tools/train-judge",
                swiftSettings: tuning),
        .target(name: "SAPTool", dependencies: ["SafetyTuning", "Llama", "RunSupport"], path: "Sources/Tools/sap",
                swiftSettings: tuning),
        .target(name: "SEALTool", dependencies: ["SafetyTuning", "Llama", "RunSupport"], path: "Sources/Tools/seal",
                swiftSettings: tuning),
        .executableTarget(name: "saft", dependencies: ["SaftTool"], path: "Sources/Executables/saft"),
        .executableTarget(name: "finetune", dependencies: ["FinetuneTool"], path: "Sources/Executables/finetune"),
        .executableTarget(name: "generate", dependencies: ["GenerateTool"], path: "Sources/Executables/generate"),
        .executableTarget(name: "make-demo-data", dependencies: ["MakeDemoDataTool"], path: "Sources/Executables/make-demo-data"),
        .executableTarget(name: "evaluate", dependencies: ["EvaluateTool"], path: "Sources/Executables/evaluate"),
        .executableTarget(name: "train-judge", dependencies: ["TrainJudgeTool"], path: "Sources/Executables/train-judge"),
        .executableTarget(name: "sap", dependencies: ["SAPTool"], path: "Sources/Executables/sap"),
        .executableTarget(name: "seal", dependencies: ["SEALTool"], path: "Sources/Executables/seal"),
        .executableTarget(name: "safetune", dependencies: ["SaftTool", "FinetuneTool", "GenerateTool", "MakeDemoDataTool", "EvaluateTool", "TrainJudgeTool",
                                                                "SAPTool", "SEALTool", "KernelBenchTool", "EngineBenchTool"],
                          path: "Sources/Executables/safetune"),

        // The dist launcher: picks the build for this CPU (Docs/DEPLOYMENT.md). Glibc only.
        .target(name: "CPUSelect", path: "Sources/CPUSelect"),
        .executableTarget(name: "safetune-launch", dependencies: ["CPUSelect"], path: "Sources/safetune-launch"),

        // MARK: - Tests
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CPUSelectTests", dependencies: ["CPUSelect"], path: "Tests/CPUSelectTests"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"],
                    path: "Tests/KernelsTests", swiftSettings: tuning),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "TestSupport"],
                    path: "Tests/ModelFormatsTests", swiftSettings: tuning),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "ModelFormats", "TestSupport"],
                    path: "Tests/TokenizationTests", swiftSettings: tuning),
        .testTarget(name: "SafetyTuningTests", dependencies: ["SafetyTuning", "Llama", "Kernels", "TestSupport"],
                    path: "Tests/SafetyTuningTests", swiftSettings: tuning),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "Kernels", "ModelFormats", "Tokenization", "TestSupport"],
                    path: "Tests/LlamaTests", swiftSettings: tuning),

        // MARK: - Benchmarks
        .target(name: "KernelBenchTool", dependencies: ["Kernels"], path: "Benchmarks/KernelBench", swiftSettings: tuning),
        .target(name: "EngineBenchTool", dependencies: ["Llama", "RunSupport"], path: "Benchmarks/EngineBench", swiftSettings: tuning),
        .executableTarget(name: "kernel-bench", dependencies: ["KernelBenchTool"], path: "Benchmarks/Executables/kernel-bench"),
        .executableTarget(name: "engine-bench", dependencies: ["EngineBenchTool"], path: "Benchmarks/Executables/engine-bench"),
        .executableTarget(name: "train-bench", dependencies: ["Kernels", "Llama"],
                          path: "Benchmarks/TrainBench", swiftSettings: tuning),
    ],
    swiftLanguageModes: [.v5]
)
