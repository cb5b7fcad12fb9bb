internal import Glibc

/// An error from the watcher: a stable ``code`` (for status files and metrics), the failing `errno`, the path and a
/// human message with a hint.
public struct WatcherError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable identifier of the failure class.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable string, e.g. `"directory_not_found"`.
        public let rawValue: String
        /// Creates a code from its stable string.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The directory does not exist (`ENOENT`).
        public static let directoryNotFound = Code("directory_not_found")
        /// The path exists but is not a directory.
        public static let notADirectory = Code("not_a_directory")
        /// The directory cannot be read (`EACCES`, `EPERM`).
        public static let permissionDenied = Code("permission_denied")
        /// `statfs(2)` failed.
        public static let filesystemQueryFailed = Code("filesystem_query_failed")
        /// `inotify_init1(2)` failed, typically `EMFILE` (`fs.inotify.max_user_instances`).
        public static let inotifyInitFailed = Code("inotify_init_failed")
        /// `inotify_add_watch(2)` failed, typically `ENOSPC` (`fs.inotify.max_user_watches`).
        public static let addWatchFailed = Code("inotify_add_watch_failed")
        /// Reading the inotify descriptor failed.
        public static let readFailed = Code("inotify_read_failed")
        /// Listing the directory failed for another reason.
        public static let listingFailed = Code("directory_listing_failed")
    }

    /// The failure class.
    public var code: Code
    /// The `errno` of the failing call, if a system call failed.
    public var errno: Int32?
    /// The path concerned.
    public var path: String
    /// What went wrong, in words.
    public var message: String
    /// What to do about it, if there is something to say.
    public var hint: String?

    /// Creates an error.
    public init(code: Code, errno: Int32? = nil, path: String, message: String, hint: String? = nil) {
        self.code = code
        self.errno = errno
        self.path = path
        self.message = message
        self.hint = hint
    }

    /// `"<code>: <message> (<path>): <strerror> [hint]"`.
    public var description: String {
        var text = "\(code): \(message) (\(path))"
        if let errno { text += ": \(Self.errnoName(errno)) \(Self.errorString(errno))" }
        if let hint { text += "; \(hint)" }
        return text
    }

    /// The `strerror(3)` text of an errno value.
    static func errorString(_ value: Int32) -> String {
        guard let text = strerror(value) else { return "errno \(value)" }
        return String(cString: text)
    }

    /// The symbolic name of the errno values the watcher expects, e.g. `ENOSPC`.
    static func errnoName(_ value: Int32) -> String {
        switch value {
        case ENOENT: "ENOENT"
        case ENOTDIR: "ENOTDIR"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case ENOSPC: "ENOSPC"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case ENOMEM: "ENOMEM"
        case EINVAL: "EINVAL"
        case ELOOP: "ELOOP"
        case EIO: "EIO"
        case ESTALE: "ESTALE"
        case ENODEV: "ENODEV"
        default: "errno \(value)"
        }
    }

    /// The error for a failed call that touched `path`, classified by `errno`.
    static func system(_ call: String, errno value: Int32, path: String) -> WatcherError {
        switch value {
        case ENOENT:
            WatcherError(
                code: .directoryNotFound, errno: value, path: path, message: "\(call) failed: no such directory")
        case ENOTDIR:
            WatcherError(code: .notADirectory, errno: value, path: path, message: "\(call) failed: not a directory")
        case EACCES, EPERM:
            WatcherError(
                code: .permissionDenied, errno: value, path: path, message: "\(call) failed: permission denied",
                hint: "the watcher needs read and search (r-x) permission on the directory")
        default:
            WatcherError(code: .listingFailed, errno: value, path: path, message: "\(call) failed")
        }
    }
}
