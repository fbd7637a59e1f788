import Foundation

/// A small command-line parser shared by the executables (no package dependencies).
///
/// Options are `--name VALUE` (or `--name=VALUE`) and flags `--name`; every option is declared
/// with its help text, so `--help` is generated and unknown or malformed options are rejected
/// with a message that names them.
public struct CommandSpec {
    public struct Option {
        public var name: String
        public var value: String?   // placeholder for options that take a value; nil for flags
        public var help: String
        public var repeatable = false
        public init(_ name: String, _ value: String?, _ help: String, repeatable: Bool = false) {
            self.name = name; self.value = value; self.help = help; self.repeatable = repeatable
        }
    }
    public var name: String
    public var synopsis: String
    public var details: String
    public var options: [Option]

    public init(name: String, synopsis: String, details: String = "", options: [Option]) {
        self.name = name
        self.synopsis = synopsis
        self.details = details
        self.options = options + [Option("help", nil, "print this help and exit"),
                                  Option("version", nil, "print the version and the build (CPU variant) and exit")]
    }

    public var usage: String {
        var s = "usage: \(name) \(synopsis)\n"
        if !details.isEmpty { s += "\n\(details)\n" }
        s += "\noptions:\n"
        let width = options.map { $0.name.count + ($0.value.map { $0.count + 1 } ?? 0) }.max() ?? 0
        for o in options {
            let head = "--\(o.name)" + (o.value.map { " \($0)" } ?? "")
            s += "  " + head.padding(toLength: width + 3, withPad: " ", startingAt: 0) + o.help + "\n"
        }
        return s
    }

    /// Parses `arguments` (without the program name). Prints usage and exits 0 on `--help`.
    public func parse(_ arguments: [String]) throws -> ParsedArguments {
        var parsed = ParsedArguments(command: name)
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw UsageError("unexpected argument '\(arg)' (options start with --)")
            }
            var key = String(arg.dropFirst(2)), inline: String?
            if let eq = key.firstIndex(of: "=") {
                inline = String(key[key.index(after: eq)...])
                key = String(key[..<eq])
            }
            guard let option = options.first(where: { $0.name == key }) else {
                throw UsageError("unknown option '--\(key)'")
            }
            if key == "help" {
                print(usage, terminator: "")
                exit(0)
            }
            if key == "version" {
                print(versionText(name))
                exit(0)
            }
            if option.value == nil {
                guard inline == nil else { throw UsageError("--\(key) takes no value") }
                parsed.flags.insert(key)
            } else {
                let value: String
                if let inline { value = inline } else {
                    guard i + 1 < arguments.count else { throw UsageError("--\(key) needs a value (\(option.value!))") }
                    i += 1
                    value = arguments[i]
                }
                if parsed.values[key] != nil && !option.repeatable { throw UsageError("--\(key) given more than once") }
                parsed.values[key, default: []].append(value)
            }
            i += 1
        }
        return parsed
    }
}

public struct UsageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// The options of one invocation, with typed accessors that name the option in their errors.
public struct ParsedArguments {
    public var command: String
    public var values: [String: [String]] = [:]
    public var flags: Set<String> = []

    public func flag(_ name: String) -> Bool { flags.contains(name) }
    public func has(_ name: String) -> Bool { values[name] != nil || flags.contains(name) }
    public func string(_ name: String) -> String? { values[name]?.last }
    public func strings(_ name: String) -> [String] { values[name] ?? [] }

    public func require(_ name: String) throws -> String {
        guard let v = string(name) else { throw UsageError("--\(name) is required") }
        return v
    }

    public func int(_ name: String, default d: Int? = nil, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let s = string(name) else { return d }
        guard let v = Int(s) else { throw UsageError("--\(name): '\(s)' is not an integer") }
        if let range, !range.contains(v) { throw UsageError("--\(name): \(v) is outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    public func double(_ name: String, default d: Double? = nil, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let s = string(name) else { return d }
        guard let v = Double(s), v.isFinite else { throw UsageError("--\(name): '\(s)' is not a number") }
        if let range, !range.contains(v) { throw UsageError("--\(name): \(v) is outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }
}
