import Foundation
import Kernels
import Llama
import RunSupport

let spec = CommandSpec(
    name: "engine-bench",
    synopsis: "[--model M.gguf] [--json PATH] [--threads N] [--repeats N] [--quick]",
    details: """
    Model-level throughput in llama-bench's terms: pp512 (prompt tokens/s for one 512-token prompt),
    tg128 (tokens/s generating 128 tokens, one stream, after a short prompt), and batched generation
    (32 prompts x 64 new tokens), plus load time and peak resident memory.
    """,
    options: [
        .init("model", "PATH", "GGUF model (default models/SmolLM2-135M-Instruct.Q4_1.gguf)"),
        .init("json", "PATH", "write the results as JSON"),
        .init("threads", "N", "worker threads (default: all cores)"),
        .init("repeats", "N", "repetitions per figure; the median is reported (default 3)"),
        .init("quick", nil, "tiny sizes (pp32, tg8, 4 x 8): checks that the harness works"),
    ])

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// The `EngineBench` command; `arguments` are the options after the tool name.
public func engineBenchMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        #if DEBUG
        if !args.flag("quick") { throw UsageError("this is a debug build; benchmark a release build") }
        #endif
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        let repeats = try args.int("repeats", default: 3, range: 1 ... 100)!
        let quick = args.flag("quick")
        let path = args.string("model") ?? "models/SmolLM2-135M-Instruct.Q4_1.gguf"
        let t0 = DispatchTime.now()
        let m = try LlamaLoader.load(path)
        let loadSeconds = seconds(since: t0)
        let model = m.model, V = model.config.vocabSize
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        var rng = UInt64(12345)
        func token() -> Int32 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Int32((rng >> 33) % UInt64(V)) }

        let ppTokens = quick ? 32 : 512, tgTokens = quick ? 8 : 128, batch = quick ? 4 : 32, batchTokens = quick ? 8 : 64
        // pp: one prompt through every block, logits of its last token.
        let prompt = (0 ..< ppTokens).map { _ in token() }
        _ = try model.forward([prompt])
        let pp = median(try (0 ..< repeats).map { _ in
            let s = DispatchTime.now(); _ = try model.forward([prompt]); return Double(ppTokens) / seconds(since: s)
        })
        // tg: decode speed after a 16-token prompt (time from the first new token to the last).
        let short = (0 ..< 16).map { _ in token() }
        func decodeRate(_ prompts: [[Int32]], _ n: Int) throws -> Double {
            var firstAt: DispatchTime?, produced = 0
            _ = try model.generate(prompts, options: GenerationOptions(maxNewTokens: n)) { _, _ in
                produced += 1
                if firstAt == nil { firstAt = DispatchTime.now() }
            }
            return Double(produced - prompts.count) / seconds(since: firstAt!)
        }
        let tg = median(try (0 ..< repeats).map { _ in try decodeRate([short], tgTokens) })
        let prompts = (0 ..< batch).map { _ in (0 ..< 16).map { _ in token() } }
        let batched = median(try (0 ..< repeats).map { _ in try decodeRate(prompts, batchTokens) })
        let rss = peakRSSMiB()
        let rows: [(String, Double)] = [("pp\(ppTokens)", pp), ("tg\(tgTokens)", tg), ("batched\(batch)x\(batchTokens)", batched)]
        print("engine-bench: machine \(machineLine()); \(versionText("engine-bench"))")
        print("engine-bench: \(path), \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads, load \(String(format: "%.2f", loadSeconds)) s, peak RSS \(String(format: "%.0f", rss)) MiB")
        for (name, v) in rows { print(String(format: "%-16@ %10.1f tokens/s", name as NSString, v)) }
        print(String(format: "batched / single-stream: %.2fx", batched / tg))
        if let json = args.string("json") {
            let doc: [String: Any] = [
                "tool": "engine-bench", "model": path, "date": ISO8601DateFormatter().string(from: Date()),
                "machine": machineReport(), "build": buildReport(), "threads": Parallel.defaultWorkers,
                "loadSeconds": loadSeconds, "peakRSSMiB": rss, "tensorTypes": m.tensorTypes,
                "results": rows.map { ["name": $0.0, "threads": Parallel.defaultWorkers, "tokensPerSecond": $0.1] },
            ]
            try writeAtomically(try jsonData(doc), to: json)
        }
    }
}
