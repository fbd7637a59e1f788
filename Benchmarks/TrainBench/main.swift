// train-bench: LoRA fine-tuning throughput of the training engine on a model shape with random weights.
//
//   SAFETUNE_CPU=native swift build -c release --product train-bench
//   .build/release/train-bench [--batch 4,8] [--seq 128] [--rank 8] [--threads 2] [--steps 5]
//                              [--recompute] [--quick] [--json OUT.json]
//
// Default shape: SmolLM2-135M (L=30, C=576, H=9, Hkv=3, D=64, F=1536, V=49152, tied), F32 base,
// LoRA r=8 alpha 16 on q,v, AdamW, loss on every token. Per case it times full steps
// (forward + backward + clip + AdamW) and forward-only passes, and reports tokens/s, model FLOP/s,
// MFU against the measured large-SGEMM rate of this build, and the share of step time in GEMMs.
import Foundation
import Kernels
import Llama

func fail(_ message: String) -> Never {
    FileHandle.standardError.write("train-bench: \(message)\n".data(using: .utf8)!)
    exit(2)
}

var batches = [4], seq = 128, rank = 8, threads = 2, steps = 5, recompute = false, quick = false
var jsonPath: String?
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let a = args.removeFirst()
    func value() -> String { if args.isEmpty { fail("\(a) needs a value") }; return args.removeFirst() }
    func int() -> Int { let v = value(); guard let i = Int(v), i > 0 else { fail("\(a): bad value \(v)") }; return i }
    switch a {
    case "--batch":
        batches = value().split(separator: ",").compactMap { Int($0) }
        if batches.isEmpty || batches.contains(where: { $0 < 1 }) { fail("--batch: bad list") }
    case "--seq": seq = int()
    case "--rank": rank = int()
    case "--threads": threads = int()
    case "--steps": steps = int()
    case "--recompute": recompute = true
    case "--quick": quick = true
    case "--json": jsonPath = value()
    default: fail("unknown option \(a)")
    }
}
#if DEBUG
if !quick { fail("build with -c release (debug timings are meaningless); --quick runs a tiny shape in any build") }
#endif
Parallel.defaultWorkers = threads

let config = quick
    ? LlamaConfig(vocabSize: 512, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffnSize: 128, contextLength: 256)
    : LlamaConfig(vocabSize: 49152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, ffnSize: 1536,
                  ropeBase: 100_000, contextLength: 2048)
if quick { seq = min(seq, 32); steps = min(steps, 2) }
let weights = try LlamaWeights(config: config)
weights.randomize(seed: 1)
let model = LlamaModel(weights: weights)

/// Useful FLOPs of one step (frozen base: no base weight gradients), the same formula as the peer:
/// forward 2·P_mm + 2·C·V + 2·L·H·D·T (causal attention), backward 2·P_mm + 2·C·V + 4·L·H·D·T per
/// token, LoRA 6·r·(in + out) per token and target (forward 2, backward 4).
func stepFLOPs(tokens: Int, seq T: Int, rank r: Int) -> (step: Double, forward: Double) {
    let c = config, C = Double(c.hiddenSize), L = Double(c.layers), F = Double(c.ffnSize)
    let pmm = L * (C * Double(c.qDim + 2 * c.kvDim) + Double(c.qDim) * C + 3 * C * F)
    let attn = L * Double(c.heads * c.headDim) * Double(T)
    let head = C * Double(c.vocabSize)
    let lora = L * Double(r) * ((C + Double(c.qDim)) + (C + Double(c.kvDim)))
    let fwd = 2 * pmm + 2 * head + 2 * attn + 2 * lora
    let bwd = 2 * pmm + 2 * head + 4 * attn + 4 * lora
    return ((fwd + bwd) * Double(tokens), fwd * Double(tokens))
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }

// Attainable rate of this build's SGEMM on a large square product (the MFU denominator).
let sgemmPeak: Double = {
    let n = quick ? 128 : 1024
    var a = [Float](repeating: 0, count: n * n), c = [Float](repeating: 0, count: n * n)
    for i in 0 ..< n * n { a[i] = Float(i % 7) * 0.1 }
    var best = Double.infinity
    for _ in 0 ..< 5 {
        let t0 = now()
        GEMM.sgemm(m: n, n: n, k: n, a: a, lda: n, b: a, ldb: n, c: &c, ldc: n, workers: threads)
        best = min(best, now() - t0)
    }
    return 2 * Double(n * n * n) / best / 1e9
}()

var results: [[String: Any]] = [], details: [[String: Any]] = []
for B in batches {
    var rng = UInt64(7)
    func next() -> Int32 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Int32((rng >> 33) % UInt64(config.vocabSize)) }
    let samples = (0 ..< B).map { _ in
        TrainingSample(tokens: (0 ..< seq).map { _ in next() }, lossMask: [Bool](repeating: true, count: seq))
    }
    let batch = try TrainingBatch(samples, config: config)
    let adapter = try LoRAAdapter(base: weights, config: LoRAConfig(rank: rank, alpha: 2 * Float(rank), targets: [.q, .v]), seed: 1)
    let engine = TrainingEngine(model: model, adapter: adapter, recompute: recompute, workers: threads)
    let optimizer = Optimizer(kind: .adamWDefault, count: adapter.parameterCount)
    let tokenWeights = batch.tokenWeights(.meanPerBatch)
    func step() {
        engine.zeroGradients()
        engine.lossAndGradients(batch, tokenWeights: tokenWeights)
        let norm = adapter.buffer.gradientNorm(workers: threads)
        optimizer.update(adapter.buffer, learningRate: 1e-4, gradScale: AdamW.clipScale(norm: norm, maxNorm: 1), workers: threads)
    }
    step()  // warm-up: allocates the activation arena
    var stepTimes: [Double] = []
    let profile = TrainingProfile()
    engine.profile = profile
    for _ in 0 ..< steps {
        let t0 = now(); step(); stepTimes.append(now() - t0)
    }
    engine.profile = nil
    var fwdTimes: [Double] = []
    for _ in 0 ..< max(2, steps / 2) {
        let t0 = now(); _ = engine.forward(batch, keepActivations: false); fwdTimes.append(now() - t0)
    }
    let N = batch.tokenCount, flops = stepFLOPs(tokens: N, seq: seq, rank: rank)
    let tStep = median(stepTimes), tFwd = median(fwdTimes), total = stepTimes.reduce(0, +)
    let tps = Double(N) / tStep, gflops = flops.step / tStep / 1e9
    let params: [String: Any] = ["model": quick ? "tiny" : "smollm2-135m", "B": B, "T": seq, "rank": rank, "targets": "q,v",
                                 "recompute": recompute]
    var r = params
    r.merge(["name": "train_step", "threads": threads, "medianNs": Int(tStep * 1e9), "tokensPerSecond": (tps * 10).rounded() / 10,
             "gflops": (gflops * 100).rounded() / 100]) { $1 }
    results.append(r)
    var f = params
    f.merge(["name": "train_forward", "threads": threads, "medianNs": Int(tFwd * 1e9),
             "tokensPerSecond": (Double(N) / tFwd * 10).rounded() / 10, "gflops": (flops.forward / tFwd / 1e9 * 100).rounded() / 100]) { $1 }
    results.append(f)
    let d: [String: Any] = ["B": B, "T": seq, "tokensPerSecond": tps, "forwardTokensPerSecond": Double(N) / tFwd,
                            "stepSeconds": tStep, "gflops": gflops, "sgemmPeakGflops": sgemmPeak, "mfuVsSgemm": gflops / sgemmPeak,
                            "gemmShare": profile.gemm / total, "crossEntropyShare": profile.crossEntropy / total,
                            "attentionShare": profile.attention / total, "activationMiB": Double(engine.activationBytes) / 1048576,
                            "flopsPerStep": flops.step]
    details.append(d)
    print(String(format: "train_step B=%d T=%d r=%d threads=%d: %.1f tokens/s (forward %.1f), %.2f GFLOP/s, MFU %.0f%% of SGEMM %.1f GFLOP/s; time in GEMM %.0f%%, cross-entropy %.0f%%, attention %.0f%%; activations %.0f MiB",
                 B, seq, rank, threads, tps, Double(N) / tFwd, gflops, 100 * gflops / sgemmPeak, sgemmPeak,
                 100 * profile.gemm / total, 100 * profile.crossEntropy / total, 100 * profile.attention / total,
                 Double(engine.activationBytes) / 1048576))
}
if let jsonPath {
    let formatter = ISO8601DateFormatter()
    let doc: [String: Any] = ["tool": "safetune", "version": "train-bench", "date": formatter.string(from: Date()),
                              "build": ["isa": BuildInfo.isa, "config": BuildInfo.configuration],
                              "machine": ["cpu": ProcessInfo.processInfo.hostName, "logicalCores": ProcessInfo.processInfo.activeProcessorCount],
                              "results": results, "details": details]
    let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: jsonPath))
}
