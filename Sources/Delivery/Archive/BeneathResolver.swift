internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// Path resolution confined to one directory (the extraction staging directory), done by the kernel where it can.
///
/// With `openat2` (Linux ≥ 5.6) every check resolves the real path — symlinks included — with
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so a chain of links that each look inside (`s -> .`,
/// `t -> s/..`) is caught wherever it leads. Without it (`ENOSYS`, or `EPERM` from a seccomp filter) the
/// fallback is stricter and purely structural: a link may not traverse another link.
struct BeneathResolver: ~Copyable {
    /// How paths are checked.
    enum Mode: Sendable, Equatable {
        /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`.
        case kernel
        /// `lstat` walks; links that traverse links are refused.
        case refuseLinkChains
    }

    /// The outcome of one check.
    enum Outcome: Equatable {
        /// Resolves to something beneath the root.
        case beneath
        /// A component does not exist (yet); nothing outside was reached before it.
        case missing
        /// Leaves the root, or traverses a link where that is not allowed; the text says how.
        case refused(String)
    }

    let root: String
    let mode: Mode
    private let rootFD: Int32

    /// Whether this kernel (and seccomp policy) lets us call `openat2`; probed once.
    static let kernelHasOpenat2: Bool = {
        let fd = carchive_open_beneath(AT_FDCWD, ".", 0, 0)
        if fd >= 0 {
            close(fd)
            return true
        }
        return errno != ENOSYS && errno != EPERM
    }()

    init(root: String, mode: Mode? = nil) throws(DeliveryError) {
        self.root = root
        self.mode = mode ?? (Self.kernelHasOpenat2 ? .kernel : .refuseLinkChains)
        rootFD = carchive_open_directory_path(root)
        guard rootFD >= 0 else { throw .posix("cannot open", path: root, errno: errno) }
    }

    deinit { close(rootFD) }

    /// Whether `relative` (components below the root) resolves beneath the root.
    /// - Parameters:
    ///   - followLast: follow a symlink in the last component (a link's own target) or not (hard link targets).
    ///   - allowLinks: whether symlinks may be traversed at all (hard link targets: no, since `link(2)` follows
    ///     intermediate components).
    func check(_ relative: [String], followLast: Bool, allowLinks: Bool) -> Outcome {
        if relative.isEmpty { return .beneath }
        let path = relative.joined(separator: "/")
        switch mode {
        case .kernel:
            let fd = carchive_open_beneath(rootFD, path, followLast ? 0 : 1, allowLinks ? 0 : 1)
            if fd >= 0 {
                close(fd)
                return .beneath
            }
            switch errno {
            case ENOENT, ENOTDIR: return .missing
            case EXDEV: return .refused("'\(path)' resolves outside the target directory")
            case ELOOP: return .refused("'\(path)' traverses a symbolic link")
            default: return .refused("'\(path)' cannot be resolved: \(String(cString: strerror(errno)))")
            }
        case .refuseLinkChains:
            var prefix = root
            for (index, part) in relative.enumerated() {
                prefix += "/" + part
                var st = stat()
                guard lstat(prefix, &st) == 0 else { return .missing }
                let isLast = index == relative.count - 1
                if st.st_mode & S_IFMT == S_IFLNK && (!isLast || followLast) {
                    let link = relative[...index].joined(separator: "/")
                    return .refused("'\(path)' traverses the symbolic link '\(link)'")
                }
            }
            return .beneath
        }
    }

    /// Checks a symlink at `entry` (components) whose target is `target`: lexically inside, and its real
    /// resolution stays beneath the root (kernel) or traverses no other link (fallback).
    func checkSymlink(entry: [String], target: String) -> Outcome {
        guard ArchivePath.symlinkStaysInside(entry: entry, target: target) else {
            return .refused("symlink to '\(target)' leaves the target directory")
        }
        switch mode {
        case .kernel:
            // Resolve the target text itself (not its lexical normal form) from the link's directory.
            let parent = Array(entry.dropLast())
            let raw = (parent + [target]).joined(separator: "/")
            let fd = carchive_open_beneath(rootFD, raw, 0, 0)
            if fd >= 0 {
                close(fd)
                return .beneath
            }
            switch errno {
            case ENOENT, ENOTDIR: return .missing
            case EXDEV: return .refused("symlink to '\(target)' resolves outside the target directory")
            default: return .refused("symlink to '\(target)' cannot be resolved: \(String(cString: strerror(errno)))")
            }
        case .refuseLinkChains:
            // Every component the target walks through (also those '..' later removes) must not be a link.
            var walked = Array(entry.dropLast())
            for part in target.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
                if part == ".." {
                    if walked.isEmpty { return .refused("symlink to '\(target)' leaves the target directory") }
                    walked.removeLast()
                    continue
                }
                walked.append(String(part))
                var st = stat()
                if lstat(root + "/" + walked.joined(separator: "/"), &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
                    return .refused(
                        "symlink to '\(target)' traverses the symbolic link '\(walked.joined(separator: "/"))'")
                }
            }
            return .beneath
        }
    }

    /// After extraction: every symlink in the tree, checked again now that all entries exist (an earlier link
    /// may have been harmless when written and lead outside through a later one).
    func verifyTree() -> (entry: String, reason: String)? {
        var pending = [""]
        while let directory = pending.popLast() {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + directory)) ?? []
            for name in names {
                let relative = directory.isEmpty ? name : directory + "/" + name
                var st = stat()
                guard lstat(root + "/" + relative, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: pending.append(relative)
                case S_IFLNK:
                    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                    let n = readlink(root + "/" + relative, &buffer, Int(PATH_MAX))
                    guard n >= 0 else { return (relative, "unreadable symlink") }
                    let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    let components = relative.split(separator: "/").map(String.init)
                    if case .refused(let why) = checkSymlink(entry: components, target: target) {
                        return (relative, why)
                    }
                default: continue
                }
            }
        }
        return nil
    }
}
