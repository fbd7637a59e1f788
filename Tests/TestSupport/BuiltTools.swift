import Foundation
import XCTest

/// The executable `name` built beside the test bundle (SwiftPM puts products and the bundle in one
/// folder on Linux; on macOS the bundle is a folder inside it), or XCTSkip with how to build it.
public func builtTool(_ name: String, besides testClass: AnyClass) throws -> URL {
    let bundle = Bundle(for: testClass).bundleURL
    let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent(name) }
    guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }) else {
        throw XCTSkip("the \(name) executable was not found next to the tests (\(candidates[1].path)); run `swift build --build-tests` first")
    }
    return url
}

/// Exit status and output of one run of a built tool. Output goes through temporary files, so a
/// chatty tool cannot block on a full pipe. The tool's per-user cache (SAFETUNE_CACHE) is a fresh
/// temporary directory unless `environment` names one: tests never read or fill the user's.
public func runTool(_ name: String, _ arguments: [String], besides testClass: AnyClass, environment: [String: String] = [:])
    throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = try builtTool(name, besides: testClass)
    p.arguments = arguments
    let tmp = FileManager.default.temporaryDirectory
    let userCache = tmp.appendingPathComponent("tool-cache-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: userCache) }
    p.environment = ProcessInfo.processInfo.environment.merging(["SAFETUNE_CACHE": userCache.path]) { $1 }
        .merging(environment) { $1 }
    let outURL = tmp.appendingPathComponent("tool-\(UUID().uuidString).out"), errURL = tmp.appendingPathComponent("tool-\(UUID().uuidString).err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    p.standardOutput = out
    p.standardError = err
    try p.run()
    p.waitUntilExit()
    try out.close(); try err.close()
    return (p.terminationStatus, String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}
