internal import Delivery
internal import FoundationEssentials
internal import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A process group seen through `/proc`: who is still in it, and how to stop all of them.
///
/// CASA is started as the leader of a new session, so its process group id equals its pid and everything it starts
/// (xvfb-run's `Xvfb`, casa's python, MPI helpers) stays in that group unless it deliberately leaves. The group id
/// stays reserved by the kernel while any member lives, so signalling `-pgid` after the leader was reaped cannot
/// hit an unrelated process.
public struct ProcessGroup: Sendable, Hashable {
    /// The process group id (the session leader's pid).
    public let id: Int32

    public init(id: Int32) { self.id = id }

    /// How many `/proc` scans ``livingMembers`` has made in this process (tests check the waits do not spin).
    static let scans = Atomic<Int>(0)

    /// Pids of the group's members that are still alive (zombies are not counted: they are dead, just unreaped).
    public var livingMembers: [Int32] {
        ProcessGroup.scans.add(1, ordering: .relaxed)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name -> Int32? in
            guard let pid = Int32(name), let stat = ProcessGroup.stat(pid) else { return nil }
            return stat.pgrp == id && stat.state != "Z" && stat.state != "X" ? pid : nil
        }
    }

    /// Whether the process `pid` is alive (exists and is not a zombie).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = stat(pid) else { return false }
        return stat.state != "Z" && stat.state != "X"
    }

    /// Sends `signal` to every member of the group. Returns false when the group has no members left.
    @discardableResult
    public func send(_ signal: Int32) -> Bool {
        kill(-id, signal) == 0
    }

    /// Stops every living member: SIGTERM, up to `grace` for them to go, then SIGKILL, then waits (up to 5 s) for
    /// them to die. Returns the pids still alive afterwards (empty unless something is stuck in the kernel).
    ///
    /// Runs to the end even when the calling task is cancelled (this *is* the teardown), on a thread of its own
    /// (``BlockingWork``): the `/proc` scans and the waiting never hold the cooperative pool.
    @discardableResult
    public func terminate(grace: Duration) async -> [Int32] {
        let group = self
        return await BlockingWork.run { _ in group.terminateBlocking(grace: grace) }
    }

    /// Polls until the group has no living member or `limit` has passed; true when empty. Not cut short by
    /// cancellation, and it never spins: it sleeps 50 ms between `/proc` scans on a thread of its own.
    public func waitUntilEmpty(within limit: Duration) async -> Bool {
        let group = self
        return await BlockingWork.run { _ in group.waitBlocking(within: limit) }
    }

    private func terminateBlocking(grace: Duration) -> [Int32] {
        guard !livingMembers.isEmpty else { return [] }
        send(SIGTERM)
        if waitBlocking(within: grace) { return [] }
        send(SIGKILL)
        _ = waitBlocking(within: .seconds(5))
        return livingMembers
    }

    private func waitBlocking(within limit: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        while !livingMembers.isEmpty {
            if clock.now >= deadline { return false }
            usleep(50_000)
        }
        return true
    }

    /// `state` and `pgrp` from `/proc/<pid>/stat` (fields 3 and 5; the command name may hold spaces and
    /// parentheses, so parse after the last `)`).
    static func stat(_ pid: Int32) -> (state: Character, pgrp: Int32)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
            let text = String(data: data, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 3, let state = fields[0].first, let pgrp = Int32(fields[2]) else { return nil }
        return (state, pgrp)
    }
}
