import Foundation

/// Messages for people go to standard error; standard output carries results.
public func log(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs a command's body: usage errors print the usage and exit 2, other errors exit 1 with
/// their description. Library code throws; only executables exit.
/// `arguments` are the options after the tool name (the multi-call `safetune` binary passes them on).
public func runCommand(_ spec: CommandSpec, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                       _ body: (ParsedArguments) throws -> Void) -> Never {
    do {
        let args = try spec.parse(arguments)
        try body(args)
        exit(0)
    } catch let e as UsageError {
        log("\(spec.name): \(e.description)\n\n\(spec.usage)")
        exit(2)
    } catch {
        log("\(spec.name): error: \(error)")
        exit(1)
    }
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written file and a failure leaves any old file in place.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
        throw OutputError("cannot write \(path): folder \(dir.path) does not exist")
    }
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
    do {
        try data.write(to: tmp)
        if rename(tmp.path, url.path) != 0 {
            throw OutputError("cannot rename \(tmp.path) to \(path): \(String(cString: strerror(errno)))")
        }
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        throw error is OutputError ? error : OutputError("cannot write \(path): \(error.localizedDescription)")
    }
}

/// JSON for reports: sorted keys, pretty-printed, numbers as given.
public func jsonData(_ object: Any) throws -> Data {
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
}

/// One line of JSON (JSONL records).
public func jsonLine(_ object: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
}

public struct OutputError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// Wall-clock seconds since `start`.
public func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// Produces `path` (a file or a directory) atomically: `body` writes to a temporary path in the
/// same folder, which then replaces `path` by rename. On failure nothing is left behind and an
/// existing `path` stays as it was (a directory is swapped with one extra rename, so a crash in
/// between leaves the old copy under a hidden `.old` name, never a half-written one).
public func produceAtomically(_ path: String, _ body: (String) throws -> Void) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
        throw OutputError("cannot write \(path): folder \(dir.path) does not exist")
    }
    let pid = ProcessInfo.processInfo.processIdentifier
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(pid).tmp").path
    let old = dir.appendingPathComponent(".\(url.lastPathComponent).\(pid).old").path
    let fm = FileManager.default
    try? fm.removeItem(atPath: tmp)
    do {
        try body(tmp)
        var existingIsDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &existingIsDir), existingIsDir.boolValue {
            try? fm.removeItem(atPath: old)
            guard rename(path, old) == 0 else { throw OutputError("cannot replace \(path): \(String(cString: strerror(errno)))") }
            guard rename(tmp, path) == 0 else {
                _ = rename(old, path)
                throw OutputError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))")
            }
            try? fm.removeItem(atPath: old)
        } else if rename(tmp, path) != 0 {
            throw OutputError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))")
        }
    } catch {
        try? fm.removeItem(atPath: tmp)
        throw error is OutputError ? error : OutputError("cannot write \(path): \(error)")
    }
}

/// `x` for a JSON object, or JSON null.
public func orNull<T>(_ x: T?) -> Any { x.map { $0 as Any } ?? NSNull() }
/// Fails before any work when the folder of an output path does not exist, so a long run never
/// ends without a place to write its result.
public func checkOutputFolder(_ path: String, option: String? = nil) throws {
    var isDir: ObjCBool = false
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        if let option { throw UsageError("--\(option) \(path): folder \(dir) does not exist") }
        throw OutputError("cannot write \(path): folder \(dir) does not exist")
    }
}
