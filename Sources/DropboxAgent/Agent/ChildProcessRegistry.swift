import Foundation
import Logging

/// Remembers the process groups a job started (`children.json` in the job directory), so that after a
/// `kill -9` of the agent a restart can stop a CASA that is still running before it runs the step again —
/// otherwise two CASAs would write the same working directory.
struct ChildProcessRegistry: Sendable {
    let jobDirectory: String
    private var path: String { jobDirectory + "/children.json" }

    /// Records a started child (its pid leads its own process group).
    func add(pid: Int32, command: String) {
        var records = FileManager.default.readJSON([ChildProcessRecord].self, at: path) ?? []
        records.append(ChildProcessRecord(pid: pid, processGroup: pid, startTime: Self.startTime(of: pid), host: AgentIdentity.current.host, command: command))
        try? AtomicFile.write(try encodeJSON(records), to: path)
    }

    /// Forgets a child that has ended.
    func remove(pid: Int32) {
        var records = FileManager.default.readJSON([ChildProcessRecord].self, at: path) ?? []
        records.removeAll { $0.pid == pid }
        try? AtomicFile.write(try encodeJSON(records), to: path)
    }

    /// Stops recorded process groups of this host that are still alive (SIGTERM, then SIGKILL after 5 s).
    func stopLeftovers(logger: Logger) {
        let records = FileManager.default.readJSON([ChildProcessRecord].self, at: path) ?? []
        for r in records where r.host == AgentIdentity.current.host {
            guard kill(r.pid, 0) == 0, r.startTime == nil || Self.startTime(of: r.pid) == r.startTime else { continue }
            logger.warning("stopping a process group left by an earlier run", metadata: ["pid": "\(r.pid)", "command": "\(r.command)"])
            kill(-r.processGroup, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while kill(r.pid, 0) == 0 && Date() < deadline { usleep(50_000) }
            kill(-r.processGroup, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot): distinguishes a reused pid.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
