import FoundationEssentials
import Glibc

/// A request as the agent holds it once validated: parsed, with the digest of its bytes, and the identity of the
/// file it was read from.
///
/// Made once, at intake, by ``parse(_:identity:)``; the claim hands it to the job (``JobRunner``). A job that starts
/// without it — resumed after a restart or taken over from another agent — makes it from the claimed copy in the job
/// store (`<job>/request.json`) with ``load(claimedCopy:)``, which calls the same ``parse(_:identity:)``; so does a
/// claim whose file changed between intake and the rename.
struct AcceptedRequest: Sendable {
    var parsed: ParsedRequest
    /// SHA-256 of the bytes as dropped (the status file's `sha256`, the key of idempotent re-submission).
    var sha256: String
    /// The file's identity when its bytes were read (nil: unknown).
    var identity: FileIdentity?

    /// The one parse of a request's bytes.
    static func parse(_ bytes: [UInt8], identity: FileIdentity?) throws(RequestRejection) -> AcceptedRequest {
        AcceptedRequest(parsed: try RequestParser.parse(bytes), sha256: RequestDigest.hex(bytes), identity: identity)
    }

    /// Whether the claimed copy at `path` is still the file this was parsed from: same inode, size and modification
    /// time (`rename(2)` keeps all three; a rewrite in place changes the last two).
    func isUnchanged(at path: String) -> Bool {
        guard let identity, let now = FileIdentity.at(path) else { return false }
        return now.device == identity.device && now.inode == identity.inode && now.size == identity.size
            && now.mtime.tv_sec == identity.mtime.tv_sec && now.mtime.tv_nsec == identity.mtime.tv_nsec
    }

    /// What reading the claimed copy found: the request, or why it can no longer be run.
    enum Loaded {
        case accepted(AcceptedRequest)
        /// The copy is no longer a valid request (it changed after intake).
        case rejected(RequestRejection)
    }

    /// Reads and parses the claimed copy of a request (`<job>/request.json`): for a job resumed after a restart or
    /// taken over, and for a claim whose file changed after intake.
    static func load(claimedCopy path: String) throws -> Loaded {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SystemCallError(call: "read", path: path, errno: errno)
        }
        do { return .accepted(try parse([UInt8](data), identity: FileIdentity.at(path))) } catch {
            return .rejected(error)
        }
    }
}

extension FileIdentity {
    /// The identity of the file at `path` (not following a link), or nil when there is none.
    static func at(_ path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), mtime: st.st_mtim,
            ctime: st.st_ctim, owner: st.st_uid, links: UInt64(st.st_nlink))
    }
}
