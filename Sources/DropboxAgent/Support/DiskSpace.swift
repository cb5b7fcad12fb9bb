import FoundationEssentials
import Glibc
import RestoreSteps

/// Full filesystems: telling them apart from other failures, and saying so.
enum DiskSpace {
    /// The error code of a failure caused by a full filesystem (its message starts with `ENOSPC`).
    static let code: RestoreError.Code = .noSpaceLeft

    /// Whether `error` (a failed write of the agent's own files) was `ENOSPC`.
    static func isNoSpace(_ error: any Error) -> Bool {
        if let e = error as? SystemCallError, e.errno == ENOSPC { return true }
        let text = "\(error)"
        return text.contains(String(cString: strerror(ENOSPC))) || text.contains("ENOSPC")
    }

    /// Bytes available to this process on the filesystem of `path` (its nearest existing ancestor), and the size.
    static func space(of path: String) -> (available: Int64, total: Int64)? {
        var p = path
        while !p.isEmpty {
            var s = statvfs()
            if statvfs(p, &s) == 0 {
                return (Int64(s.f_bavail) * Int64(s.f_frsize), Int64(s.f_blocks) * Int64(s.f_frsize))
            }
            guard let slash = p.lastIndex(of: "/"), slash != p.startIndex else { break }
            p = String(p[..<slash])
        }
        return nil
    }

    /// Whether the filesystem of `path` is (nearly) full: under 1 % or 1 MiB free, whichever is smaller.
    static func isFull(_ path: String) -> Bool {
        guard let s = space(of: path), s.total > 0 else { return false }
        return s.available < min(1 << 20, s.total / 100)
    }

    /// A step failure said in terms of the full disk when it is one: the write said `ENOSPC`, or — for CASA (killed
    /// by a signal when its disk filled, it says nothing about space itself) and for failures already known to be
    /// transient — one of `paths` lies on a full filesystem. A decision such as an unknown MOUS is never blamed on
    /// the disk. The result is transient: retried once space returns, within `archive.retryHorizonSeconds`.
    static func annotate(_ e: RestoreError, paths: [String]) -> RestoreError {
        guard e.code != code, e.code != .cancelled else { return e }
        let said = e.message.contains(String(cString: strerror(ENOSPC))) || e.message.contains("ENOSPC")
        let full = e.step == .casa || e.isTransient || said ? paths.first(where: isFull) : nil
        guard said || full != nil else { return e }
        let place =
            full.map { path -> String in
                let free = space(of: path)?.available ?? 0
                return " on the filesystem of \(path) (\(free) bytes free)"
            } ?? ""
        let cause = said ? "" : "; the failure was most likely caused by the full disk"
        return RestoreError(
            code, "ENOSPC: no space left on device\(place)\(cause): \(e.message)",
            hint: "Free space there (or give the agent more); the request is retried once space returns.",
            step: e.step, isTransient: true)
    }
}
