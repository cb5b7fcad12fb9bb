import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// Checks made when the configuration is loaded, beyond what decoding does: JSON syntax with line and column,
/// unknown keys in the sections decoded by other modules (`notifications.smtp`, `casa.installations[]`), and every
/// string setting that is really a choice.
extension AgentConfiguration {
    /// The allowed values of each string setting that is an enum (JSON path → values).
    static let enumSettings: [(path: String, values: [String])] = [
        ("$.delivery.cleanWorkingArea", ["never", "onSuccess", "always"]),
        ("$.archive.rawdataSource", ["archive", "command"]),
        ("$.logging.level", Logger.Level.allCases.map(\.rawValue)),
        ("$.logging.format", ["json", "text"]),
        ("$.notifications.smtp.security", ["startTLS", "implicitTLS", "none"]),
        ("$.notifications.notifyOn[]", ["succeeded", "failed", "cancelled"]),
    ]

    static let smtpKeys: Set<String> = [
        "url", "security", "username", "passwordFile", "password", "caFile", "verifyPeer", "timeoutSeconds",
        "maxAttempts",
    ]
    static let installationKeys: Set<String> = [
        "name", "kind", "home", "version", "runpipeline", "scriptDir", "programDir", "xvfbRun", "useXvfb", "path",
        "extraEnvironment",
    ]

    /// Parses `bytes` strictly: a syntax error names its line and column, duplicate keys are refused.
    static func parseSyntax(_ bytes: [UInt8]) throws -> JSONValue {
        do { return try StrictJSONParser.parse(bytes) } catch {
            throw ConfigurationError(
                path: "line \(error.line), column \(error.column)", message: "not valid JSON: \(error.message)")
        }
    }

    /// Unknown keys inside `notifications.smtp` and each `casa.installations[i]`.
    static func checkNestedKeys(_ json: JSONValue) throws {
        func check(_ value: JSONValue?, _ known: Set<String>, _ path: String) throws {
            guard case .object(let members)? = value else { return }
            for member in members where !known.contains(member.key) {
                throw ConfigurationError(
                    path: path + "." + member.key,
                    message: "unknown key (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        try check(json["notifications"]?["smtp"], smtpKeys, "$.notifications.smtp")
        if case .array(let items)? = json["casa"]?["installations"] {
            for (i, item) in items.enumerated() { try check(item, installationKeys, "$.casa.installations[\(i)]") }
        }
    }

    /// `value` (nil: not set) is one of the values of the choice at `path` (``enumSettings``).
    static func checkChoice(_ value: String?, _ path: String) throws {
        guard let value, let allowed = enumSettings.first(where: { $0.path == path })?.values else { return }
        guard allowed.contains(value) else {
            let close = allowed.first { $0.lowercased() == value.lowercased() }
            throw ConfigurationError(
                path: path.replacingAll("[]", with: ""),
                message: "must be one of \(allowed.joined(separator: ", ")), not \"\(value)\""
                    + (close.map { " (did you mean \"\($0)\"?)" } ?? ""))
        }
    }

    /// Every string setting that is a choice holds one of its values (`"onsuccess"` must not silently mean `never`).
    func checkChoices() throws {
        func check(_ value: String?, _ path: String) throws { try Self.checkChoice(value, path) }
        try check(delivery.cleanWorkingArea, "$.delivery.cleanWorkingArea")
        try check(archive.rawdataSource, "$.archive.rawdataSource")
        try check(logging.level, "$.logging.level")
        try check(logging.format, "$.logging.format")
        for state in notifications.notifyOn { try check(state, "$.notifications.notifyOn[]") }
        if archive.rawdataSource == "command" && (archive.rawdataCommand ?? []).isEmpty {
            throw ConfigurationError(
                path: "$.archive.rawdataCommand", message: "rawdataSource is \"command\" but no rawdataCommand is given"
            )
        }
        if (archive.username == nil) != (archive.passwordFile == nil) {
            throw ConfigurationError(
                path: archive.username == nil ? "$.archive.username" : "$.archive.passwordFile",
                message: "archive.username and archive.passwordFile go together (the store's login)")
        }
        if archive.username != nil && archive.url == nil {
            throw ConfigurationError(
                path: "$.archive.username", message: "a login is only used with an HTTP store (archive.url)")
        }
        if mode_t(spool.statusFileMode, radix: 8) == nil || spool.statusFileMode.count > 4 {
            throw ConfigurationError(
                path: "$.spool.statusFileMode",
                message: "must be an octal mode such as \"0644\", not \"\(spool.statusFileMode)\"")
        }
        for (key, text) in [("directoryMode", delivery.directoryMode), ("fileMode", delivery.fileMode)] {
            guard let mode = mode_t(text, radix: 8), text.count <= 4, mode & 0o7000 == 0 else {
                throw ConfigurationError(
                    path: "$.delivery.\(key)",
                    message: "must be an octal mode such as \"0755\" (no setuid, setgid or sticky bit), not \"\(text)\""
                )
            }
            if key == "directoryMode", mode & 0o700 != 0o700 {
                throw ConfigurationError(
                    path: "$.delivery.directoryMode", message: "must give the agent rwx (0700), not \"\(text)\"")
            }
            if key == "fileMode", mode & 0o600 != 0o600 || mode & 0o111 != 0 {
                throw ConfigurationError(
                    path: "$.delivery.fileMode", message: "must give the agent rw (0600) and nobody x, not \"\(text)\"")
            }
        }
        if !(delivery.retentionDays >= 0) || delivery.retentionDays > 36500 {
            throw ConfigurationError(
                path: "$.delivery.retentionDays", message: "must be between 0 (for ever) and 36500 days")
        }
        if delivery.reuseMaxBytes < 0 {
            throw ConfigurationError(path: "$.delivery.reuseMaxBytes", message: "must be 0 (no reuse) or more bytes")
        }
    }
}
