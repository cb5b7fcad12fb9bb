import Delivery
import FoundationEssentials
import Glibc
import Synchronization

/// Exclusive use of a data directory by one agent process: `<data>/agent.lock`, `flock(2)`-locked for the life of
/// the process and holding its pid. The journal, cache, working areas and outbox are not safe to share; a second
/// agent on the same data directory refuses to start and names the holder.
final class DataDirectoryLock: Sendable {
    let path: String
    private let descriptor: Mutex<Int32>

    /// - Throws: ``ConfigurationError`` naming the holder's pid when another process holds the lock.
    init(dataDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        path = dataDirectory + "/agent.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            let holder =
                (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingWhitespaceAndNewlines()
                ?? ""
            close(fd)
            guard e == EWOULDBLOCK else { throw SystemCallError(call: "flock", path: path, errno: e) }
            throw ConfigurationError(
                path: "$.dataDirectory",
                message:
                    "\(dataDirectory) is in use by another agent (pid \(holder.isEmpty ? "unknown" : holder), lock \(path)); give each agent its own dataDirectory (several agents may share one spool)"
            )
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = Mutex(fd)
    }

    /// Gives the data directory up (the agent has stopped); also done when the process ends.
    func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}
