import FoundationEssentials
import Glibc

/// Tells systemd how the agent is doing (`Type=notify`): `READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`.
///
/// Why the datagram protocol directly rather than libsystemd's `sd_notify(3)`: the protocol is one `sendto(2)` of
/// newline-separated `KEY=VALUE` text on the `AF_UNIX`/`SOCK_DGRAM` socket named by `$NOTIFY_SOCKET`, documented as a
/// stable interface meant to be reimplemented (sd_notify(3), "Notes"; systemd's docs ship a reference
/// implementation). Linking libsystemd would add a C module and a run-time `libsystemd0` dependency to the package
/// for 40 lines, and the same binary must run unchanged outside systemd (tests, containers, `run` in a terminal),
/// where `$NOTIFY_SOCKET` is simply unset and every call is a no-op. Only `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and
/// `$WATCHDOG_PID` are read; the unit's default `NotifyAccess=main` makes systemd ignore anything CASA (a child
/// that inherits the environment) might send.
struct SystemdNotifier: Sendable {
    /// The socket: a path, or `@name` for the abstract namespace; nil outside systemd (then nothing is sent).
    var socketPath: String?
    /// systemd's watchdog timeout (`WatchdogSec=`); the agent pings at a third of it. Nil: no watchdog.
    var watchdogTimeout: Duration?

    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (the watchdog applies only when that pid is ours).
    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> SystemdNotifier {
        var n = SystemdNotifier(
            socketPath: env["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }, watchdogTimeout: nil)
        if let usec = env["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
            env["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true
        {
            n.watchdogTimeout = .microseconds(usec)
        }
        return n
    }

    /// How often the work loop pings the watchdog: a third of the timeout, so one late ping is not fatal.
    var watchdogPingInterval: Duration? { watchdogTimeout.map { $0 / 3 } }

    /// Sends one notification (lines `KEY=VALUE`); returns false if it could not be delivered (never throws: the
    /// agent works the same whether systemd listens or not).
    @discardableResult
    func notify(_ fields: [String]) -> Bool {
        guard let socketPath, !fields.isEmpty else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity, pathBytes.count > 0 else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes[0] == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(fields.joined(separator: "\n").utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == message.count
    }

    /// `STATUS=` text: what `systemctl status dropbox-agent` shows.
    static func statusLine(queued: Int, running: Int, waiting: Int) -> String {
        "STATUS=\(running) running, \(queued) queued, \(waiting) waiting"
    }
}
