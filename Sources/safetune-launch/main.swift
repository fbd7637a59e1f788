// The dist launcher: `bin/<tool>` is a link to this program, which runs the multi-call binary
// `libexec/<variant>/safetune` as <tool> for the best variant this CPU supports (CPUSelect), with
// the same arguments. SAFETUNE_VARIANT=<name> forces a variant; the choice is passed on in
// SAFETUNE_LAUNCH (shown by every tool's --version and in its JSON reports).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CPUSelect

func die(_ message: String) -> Never {
    fputs("safetune-launch: \(message)\n", stderr)
    exit(127)
}

func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0 ..< n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

func directoryOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

/// This program's own file, links resolved.
func selfPath() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { die("cannot read /proc/self/exe") }
    return String(decoding: buf[0 ..< n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

let argv0 = CommandLine.arguments.first ?? "safetune-launch"
var tool = String(argv0.split(separator: "/").last ?? "")
var toolArgs = Array(CommandLine.arguments.dropFirst())
if tool == "safetune-launch" {
    // Called directly: `safetune-launch TOOL ARGS...`, or `--which` to print the choice.
    guard let first = toolArgs.first else {
        die("usage: safetune-launch TOOL [ARGS...] | --which   (normally run through bin/<tool> links)")
    }
    tool = first
    toolArgs.removeFirst()
}

#if arch(arm64)
let arch = "arm64"
#else
let arch = "x86_64"
#endif
let root = directoryOf(directoryOf(selfPath()))
let libexec = root + "/libexec"
let installed = Set(CPUSelect.variants(arch: arch).map(\.name).filter { isExecutable(libexec + "/" + $0 + "/safetune") })
let flags = CPUSelect.flags(cpuinfo: readFile("/proc/cpuinfo") ?? "")
let forced = getenv("SAFETUNE_VARIANT").map { String(cString: $0) }
let (chosen, error) = CPUSelect.choose(flags: flags, arch: arch, available: installed, forced: forced)
guard let variant = chosen else { die(error ?? "no variant") }
let how = forced.map { $0.isEmpty ? "" : " (forced by SAFETUNE_VARIANT)" } ?? ""
let note = "\(variant.name)\(how); installed: \(installed.sorted().joined(separator: ","))"

if tool == "--which" {
    print(note)
    exit(0)
}
let target = libexec + "/" + variant.name + "/safetune"
setenv("SAFETUNE_LAUNCH", note, 1)
// argv[0] names the tool: the multi-call binary dispatches on it.
var cArgs: [UnsafeMutablePointer<CChar>?] = ([tool] + toolArgs).map { strdup($0) } + [nil]
execv(target, &cArgs)
die("cannot run \(target): \(String(cString: strerror(errno)))")
