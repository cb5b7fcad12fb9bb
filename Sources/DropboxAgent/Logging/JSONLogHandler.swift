import Foundation
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
        let line: String
        switch format {
        case .json:
            var object: [String: Any] = ["time": Timestamp.now(), "level": event.level.rawValue, "message": "\(event.message)", "label": label]
            for (key, value) in merged { object[key] = Self.jsonValue(value) }
            if event.level >= .error { object["source"] = "\(event.source) \(event.file):\(event.line)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            line = String(decoding: data, as: UTF8.self)
        case .text:
            let meta = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(Timestamp.now()) \(event.level.rawValue.uppercased()) \(event.message)" + (meta.isEmpty ? "" : " " + meta)
        }
        Self.output.withLock { _ in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return number(c) ?? "\(c)"
        case .array(let a): return a.map(jsonValue)
        case .dictionary(let d): return d.mapValues(jsonValue)
        }
    }

    /// Numbers stay JSON numbers (`"size.bytes": 1024`, `"casa.duration.seconds": 52.2`), booleans JSON booleans;
    /// the unit belongs in the key. Non-finite doubles become strings (JSON has no NaN).
    private static func number(_ value: any CustomStringConvertible & Sendable) -> Any? {
        switch value {
        case let b as Bool: return b
        case let i as Int: return i
        case let i as Int64: return i
        case let i as Int32: return i
        case let i as UInt64: return i
        case let i as UInt32: return i
        case let i as UInt: return i
        case let d as Double: return d.isFinite ? d : nil
        case let f as Float: return f.isFinite ? Double(f) : nil
        default: return nil
        }
    }

    /// Installs the handler for the whole process (once).
    static func bootstrap(level: String, format: String) {
        let parsed = Logger.Level(rawValue: level) ?? .info
        let f = Format(rawValue: format) ?? .json
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: parsed, format: f) }
    }
}
