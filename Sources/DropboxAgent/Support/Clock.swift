import Delivery
import FoundationEssentials
import Glibc
import RestoreSteps

/// The status file's timestamps: RFC 3339, UTC, milliseconds always present (`2024-03-01T10:00:00.000Z`).
/// A name for the agent's use of RestoreSteps' ``UTCTime``, the project's one RFC 3339 implementation.
enum Timestamp {
    static func string(_ date: Date) -> String { UTCTime(date).fixedWidthDescription }

    static func now() -> String { string(Date()) }

    /// Parses what ``string(_:)`` writes (and any RFC 3339 time ``UTCTime/init(parsing:)`` accepts).
    static func date(_ s: String) -> Date? { UTCTime(parsing: s)?.date }
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
            .trimmingWhitespaceAndNewlines()
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
