// One binary for every SafeTune tool (the dist builds ship this instead of one 60 MB static
// binary per tool): `safetune TOOL [OPTIONS]`, or a link named after the tool.
import EngineBenchTool
import EvaluateTool
import FinetuneTool
import GenerateTool
import KernelBenchTool
import MakeDemoDataTool
import SaftTool
import SAPTool
import SEALTool
import TrainJudgeTool

#if canImport(Glibc)
import Glibc
#endif

let tools: [(name: String, run: ([String]) -> Never, summary: String)] = [
    ("saft", saftMain, "filter harmful rows out of fine-tuning data (SAFT: published, guided, combined; map/reduce)"),
    ("finetune", finetuneMain, "LoRA fine-tuning: PEFT adapter, merged GGUF, JSON report"),
    ("generate", generateMain, "answer prompts with a model (chat template applied)"),
    ("make-demo-data", makeDemoDataMain, "write the labeled demo fine-tuning mixture"),
    ("sap", sapMain, "LoRA fine-tuning with safety-aware probing (SAP)"),
    ("seal", sealMain, "rank fine-tuning rows against a safe set and keep the best (SEAL)"),
    ("train-judge", trainJudgeMain, "train the harmfulness judge on labeled answers"),
    ("evaluate", evaluateMain, "harmful-answer rate, over-refusal and helpfulness of a model (or --compare reports)"),
    ("kernel-bench", kernelBenchMain, "time and verify every kernel on this machine"),
    ("engine-bench", engineBenchMain, "prompt, decode and batched throughput of a model"),
]

let arguments = CommandLine.arguments
let invokedAs = String((arguments.first ?? "safetune").split(separator: "/").last ?? "safetune")
if let tool = tools.first(where: { $0.name == invokedAs }) { tool.run(Array(arguments.dropFirst())) }
if arguments.count >= 2, let tool = tools.first(where: { $0.name == arguments[1] }) { tool.run(Array(arguments.dropFirst(2))) }
let list = tools.map { "  " + $0.name.padding(toLength: 16, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n")
let usage = "usage: safetune TOOL [OPTIONS]   (TOOL --help for its options)\n\ntools:\n\(list)\n"
if arguments.count >= 2 && (arguments[1] == "--help" || arguments[1] == "-h") { print(usage, terminator: ""); exit(0) }
fputs((arguments.count >= 2 ? "safetune: unknown tool '\(arguments[1])'\n\n" : "") + usage, stderr)
exit(2)
