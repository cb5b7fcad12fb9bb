/// How a ``DirectoryWatcher`` learns about new names in its directory.
public enum WatchMode: String, Sendable, Codable, CaseIterable {
    /// Ask `statfs(2)` which filesystem holds the directory and choose ``inotify`` when the kernel sees every
    /// change there (local filesystems), ``polling`` otherwise (NFS, CIFS/SMB, FUSE, overlayfs, 9p, Ceph, …).
    case automatic
    /// Watch with inotify, plus a full rescan every ``WatcherConfiguration/rescanInterval``.
    case inotify
    /// Do not use inotify at all: list the directory every ``WatcherConfiguration/pollInterval``.
    case polling
}
