import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// Writes one JSON object per line to stderr: `{"time","level","message","label",...metadata}`.
///
/// journald stores each line as one entry; `jq` reads them. Metadata keys are dotted (`request.name`,
/// `job.id`) per swift-log's structured-logging practice. Writes are serialised so lines never interleave.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: Format

    enum Format: String { case json, text }

    private static let output = Mutex(())

    init(label: String, level: Logger.Level, format: Format) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line: String
        switch format {
        case .json:
            // Encoded by hand, keys sorted (the output JSONSerialization gave with `.sortedKeys`): a log line is
            // written for every state change, and JSONSerialization (boxing every value, sorting through
            // NSString) was the largest single cost of a request in a burst (bench/README.md).
            var fields: [(String, Logger.MetadataValue)] = [
                ("time", .string(Timestamp.now())), ("level", .string(event.level.rawValue)),
                ("message", .string("\(event.message)")), ("label", .string(label)),
            ]
            fields += merged.map { ($0.key, $0.value) }
            if event.level >= .error {
                fields.append(("source", .string("\(event.source) \(event.file):\(event.line)")))
            }
            var seen = Set<String>()
            fields = fields.reversed().filter { seen.insert($0.0).inserted }  // the later one wins, as before
            fields.sort { $0.0 < $1.0 }
            line = "{"
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { line += "," }
                Self.appendString(key, to: &line)
                line += ":"
                Self.appendValue(value, to: &line)
            }
            line += "}"
        case .text:
            let meta = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line =
                "\(Timestamp.now()) \(event.level.rawValue.uppercased()) \(event.message)"
                + (meta.isEmpty ? "" : " " + meta)
        }
        line += "\n"
        Self.output.withLock { _ in
            var rest = line.utf8[...]
            while !rest.isEmpty {
                let n =
                    rest.withContiguousStorageIfAvailable { write(2, $0.baseAddress, $0.count) }
                    ?? {
                        let bytes = Array(rest)
                        return bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                    }()
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                rest = rest.dropFirst(n)
            }
        }
    }

    private static func appendValue(_ value: Logger.MetadataValue, to out: inout String) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .stringConvertible(let c):
            if let number = number(c) { out += number } else { appendString("\(c)", to: &out) }
        case .array(let a):
            out += "["
            for (index, element) in a.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let d):
            out += "{"
            for (index, (key, element)) in d.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(element, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal (RFC 8259: quote and backslash escaped, control characters as `\u00XX` or their short
    /// forms; `/` left alone).
    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        var plain = true
        for byte in s.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            plain = false
            break
        }
        if plain {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Numbers stay JSON numbers (`"size.bytes": 1024`, `"casa.duration.seconds": 52.2`), booleans JSON booleans;
    /// the unit belongs in the key. Non-finite doubles become strings (JSON has no NaN).
    private static func number(_ value: any CustomStringConvertible & Sendable) -> String? {
        switch value {
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let i as Int64: return String(i)
        case let i as Int32: return String(i)
        case let i as UInt64: return String(i)
        case let i as UInt32: return String(i)
        case let i as UInt: return String(i)
        case let d as Double: return d.isFinite ? jsonDouble(d) : nil
        case let f as Float: return f.isFinite ? jsonDouble(Double(f)) : nil
        default: return nil
        }
    }

    /// `52.2`, `3` (not `3.0`), `1e-05`: Swift's shortest round-trip form, integral values without `.0`.
    private static func jsonDouble(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    /// Installs the handler for the whole process (once).
    static func bootstrap(level: String, format: String) {
        let parsed = Logger.Level(rawValue: level) ?? .info
        let f = Format(rawValue: format) ?? .json
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: parsed, format: f) }
    }
}
