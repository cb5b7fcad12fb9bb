import Foundation

/// RFC 3339 UTC timestamps with milliseconds, as the status file uses.
enum Timestamp {
    static func string(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int((date.timeIntervalSince1970 - Double(t)) * 1000)
        // Digits by hand, not `String(format:)` (which went through Foundation's formatter for every status write
        // and log line: 4 % of a burst's CPU, bench/README.md).
        var text = [UInt8]()
        text.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int, then separator: UInt8?) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = max(0, value)
            while divisor > 0 {
                text.append(UInt8(48 + (v / divisor) % 10))
                v %= divisor
                divisor /= 10
            }
            if let separator { text.append(separator) }
        }
        digits(Int(tm.tm_year) + 1900, 4, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(tm.tm_mday), 2, then: UInt8(ascii: "T"))
        digits(Int(tm.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(tm.tm_sec), 2, then: UInt8(ascii: "."))
        digits(min(ms, 999), 3, then: UInt8(ascii: "Z"))
        return String(decoding: text, as: UTF8.self)
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
