import FoundationEssentials
import Glibc

/// Counts the processes working in a restore's working area: the CASA processes (and their children) the agent
/// started. Read from `/proc/<pid>/cwd`, the same test the agent uses to stop a CASA left by a killed agent.
enum CASAProcesses {
    static func count(under restoreDirectory: String) -> Int {
        let prefix = restoreDirectory.hasSuffix("/") ? restoreDirectory : restoreDirectory + "/"
        let own = getpid()
        var n = 0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != own else { continue }
            guard let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd") else {
                continue
            }
            if cwd.hasPrefix(prefix) { n += 1 }
        }
        return n
    }
}
