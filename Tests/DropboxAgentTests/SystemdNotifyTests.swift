import Foundation
import Synchronization
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// A real `NOTIFY_SOCKET`: an `AF_UNIX` datagram socket bound to a path, read on its own thread.
final class NotifyListener: Sendable {
    let path: String
    private let fd: Int32
    private let received = Mutex<[(time: Double, text: String)]>([])
    private let stopped = Atomic<Bool>(false)

    init() throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, bound == 0 else { throw SystemCallError(call: "bind", path: path, errno: errno) }
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.load(ordering: .relaxed) {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 {
                    let text = String(decoding: buffer[0..<n], as: UTF8.self)
                    received.withLock { $0.append((Date().timeIntervalSince1970, text)) }
                }
            }
        }
        thread.start()
    }

    deinit {
        stopped.store(true, ordering: .relaxed)
        usleep(100_000)
        close(fd)
        unlink(path)
    }

    var messages: [(time: Double, text: String)] { received.withLock { $0 } }

    func lines(_ field: String, from start: Double = 0, to end: Double = .infinity) -> [Double] {
        messages.filter {
            $0.time >= start && $0.time <= end && $0.text.split(separator: "\n").contains(Substring(field))
        }.map(\.time)
    }

    func waitFor(_ field: String, after start: Double = 0, timeout: Double = 30) async throws -> Double {
        let deadline = Date().timeIntervalSince1970 + timeout
        while Date().timeIntervalSince1970 < deadline {
            if let t = lines(field, from: start).first { return t }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no \(field) within \(timeout) s; got \(messages.map(\.text))")
        throw CancellationError()
    }
}

extension SpoolAgent {
    /// Test only: blocks the agent's executor, as a hung syscall or a deadlock in the agent would. Defined here, in
    /// the tests, so production code carries no hook; the agent cannot tell it from a real hang. Returns when the
    /// block began (the hop onto the actor can take a while on a loaded machine).
    func blockForTesting(seconds: Double) -> Double {
        let began = Date().timeIntervalSince1970
        usleep(useconds_t(seconds * 1_000_000))
        return began
    }
}

@Suite(.serialized, .tags(.endToEnd), .selected(.endToEnd))
struct SystemdNotifyTests {
    @Test func readyStatusWatchdogAndStoppingOnARealSocket() async throws {
        let listener = try NotifyListener()
        // WatchdogSec=0.6 s: pings every 0.2 s from the work loop.
        let harness = try AgentHarness(
            systemd: SystemdNotifier(socketPath: listener.path, watchdogTimeout: .milliseconds(600)))
        harness.start()
        let ready = try await listener.waitFor("READY=1")
        #expect(
            listener.messages.contains {
                $0.text.contains("READY=1") && $0.text.contains("STATUS=0 running, 0 queued, 0 waiting")
            })
        // Pings while the agent works (polled with a deadline: a loaded machine may be slow, never silent).
        let deadline = Date().timeIntervalSince1970 + 30
        while listener.lines("WATCHDOG=1", from: ready).count < 3 && Date().timeIntervalSince1970 < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(listener.lines("WATCHDOG=1", from: ready).count >= 3, "pings while the agent works")

        // The work loop hangs (the agent's actor is blocked for 3 s): the pings stop, then resume. Asserted as a
        // gap in the pings that covers most of the hang (a loop that kept pinging would leave gaps of ~0.2 s),
        // not as a fixed time window, so a slow machine cannot make it fail.
        let agent = harness.runtime.agent
        let hung = await Task.detached { await agent.blockForTesting(seconds: 3) }.value
        _ = try await listener.waitFor("WATCHDOG=1", after: hung + 3, timeout: 10)  // resumed after the hang
        let pings = listener.lines("WATCHDOG=1", from: ready)
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        let spanning = zip(pings.dropFirst(), pings).filter { $1 <= hung + 0.3 && $0 >= hung + 2.7 }
        #expect(!spanning.isEmpty, "no gap in the watchdog pings spans the 3 s hang: gaps \(gaps)")

        try await harness.shutdown()
        _ = try await listener.waitFor("STOPPING=1")
    }

    @Test func abstractSocketsAndEnvironment() {
        let n = SystemdNotifier.fromEnvironment([
            "NOTIFY_SOCKET": "@dropbox-test", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())",
        ])
        #expect(n.socketPath == "@dropbox-test")
        #expect(n.watchdogPingInterval == .seconds(10))
        #expect(
            SystemdNotifier.fromEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]).watchdogTimeout == nil)
        #expect(SystemdNotifier.fromEnvironment([:]).notify(["READY=1"]) == false)
    }
}
