import Foundation

/// RFC 3339 UTC timestamps with milliseconds, as the status file uses.
enum Timestamp {
    static func string(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int((date.timeIntervalSince1970 - Double(t)) * 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
            Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), min(ms, 999))
    }

    static func now() -> String { string(Date()) }

    /// Parses the format written by ``string(_:)`` (and plain `Z` seconds).
    static func date(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }
}

/// This machine and process, as written into status files and leases.
struct AgentIdentity: Codable, Sendable, Hashable {
    var host: String
    var pid: Int32
    /// `/proc/sys/kernel/random/boot_id`: tells a reboot (every pid reused) from a live process.
    var bootId: String?

    static let current: AgentIdentity = {
        var buffer = [UInt8](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let host = String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return AgentIdentity(host: host, pid: getpid(), bootId: boot)
    }()

    /// For an identity recorded on this host: whether that process can still be running.
    /// Another boot, or no such pid, means it is gone.
    var isAliveOnThisHost: Bool {
        let me = AgentIdentity.current
        guard host == me.host else { return true }  // another host: only its lease tells
        if let bootId, let myBoot = me.bootId, bootId != myBoot { return false }
        if pid == me.pid { return true }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
