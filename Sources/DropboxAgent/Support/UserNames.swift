import FoundationEssentials
import Glibc

/// User names for messages: `alice (uid 1001)`, or `uid 1001` when the uid has no passwd entry.
enum UserNames {
    static func name(of uid: uid_t) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name
        else { return nil }
        return String(cString: name)
    }

    static func describe(_ uid: uid_t) -> String {
        name(of: uid).map { "user \($0) (uid \(uid))" } ?? "uid \(uid) (no such user)"
    }
}
