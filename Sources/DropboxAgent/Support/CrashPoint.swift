import FoundationEssentials
import Glibc
import Synchronization

/// Test-only fault injection: `DROPBOX_AGENT_CRASH_AT=name[:n],…` makes the process `kill -9` itself the n-th
/// time (default first) it passes the named point, so crash tests hit a precise window between two writes with a
/// real SIGKILL. Without the variable every call is one dictionary lookup on an empty table.
enum CrashPoint {
    private static let plan: Mutex<[String: Int]> = Mutex(
        parse(ProcessInfo.processInfo.environment["DROPBOX_AGENT_CRASH_AT"]))

    static func parse(_ text: String?) -> [String: Int] {
        var out: [String: Int] = [:]
        for item in (text ?? "").split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1)
            out[String(parts[0])] = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
        }
        return out
    }

    /// Kills the process with SIGKILL if `name` is armed and this is its n-th pass.
    static func hit(_ name: String) {
        let fire = plan.withLock { plan -> Bool in
            guard let remaining = plan[name] else { return false }
            if remaining <= 1 {
                plan[name] = nil
                return true
            }
            plan[name] = remaining - 1
            return false
        }
        if fire { kill(getpid(), SIGKILL) }
    }
}
