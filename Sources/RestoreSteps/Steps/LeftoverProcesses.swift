internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Finds and stops processes whose working directory is inside a restore's `working/` — a CASA left
/// running when the agent that started it was killed (`kill -9` cannot take the child's process group along).
enum LeftoverProcesses {
    /// Process ids (other than ours) whose `/proc/<pid>/cwd` is `directory` or below it.
    static func find(workingIn directory: String) -> [Int32] {
        let target = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        let me = getpid()
        var found: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            guard let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd") else {
                continue
            }
            if cwd == target || cwd.hasPrefix(target + "/") { found.append(pid) }
        }
        return found
    }

    /// Stops each leftover's process group with ``ProcessGroup/terminate(grace:)`` (SIGTERM, `grace`, SIGKILL),
    /// then kills any leftover that was not in a group of its own.
    static func stop(workingIn directory: String, grace: Duration, logger: Logger) async {
        let pids = find(workingIn: directory)
        guard !pids.isEmpty else { return }
        logger.warning(
            "stopping processes left in the working directory by an earlier run",
            metadata: ["pids": "\(pids)", "directory": "\(directory)"])
        let groups = Set(pids.map { getpgid($0) }.filter { $0 > 1 && $0 != getpgrp() })
        for group in groups { await ProcessGroup(id: group).terminate(grace: grace) }
        for pid in find(workingIn: directory) { kill(pid, SIGKILL) }
    }
}
