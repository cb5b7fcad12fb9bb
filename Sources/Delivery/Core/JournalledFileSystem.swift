// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import FoundationEssentials
internal import Glibc
internal import Synchronization

/// Which file systems let ``AtomicFile`` make a replacement durable with one journal commit.
enum JournalledFileSystem {
    /// Whether `fd` lives on a file system mounted as `ext4` or `xfs` (by `/proc/self/mountinfo`, so ext2 and
    /// ext3, which share ext4's magic number, do not count), whose single ordered journal lets the directory
    /// `fsync` after the rename commit the file's metadata too (see ``AtomicFile``). An ext4 made
    /// without a journal (`mkfs.ext4 -O ^has_journal`, unusual) is not told apart: don't put spools on one.
    static func hasOrderedJournal(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        let device = UInt64(info.st_dev)
        if let known = journalled.withLock({ $0[device] }) { return known }
        let answer = mountedFileSystemType(device: device).map { $0 == "ext4" || $0 == "xfs" } ?? false
        journalled.withLock { $0[device] = answer }
        return answer
    }

    private static let journalled = Mutex<[UInt64: Bool]>([:])

    /// The file system type `/proc/self/mountinfo` gives for the device `device` (`major:minor`).
    private static func mountedFileSystemType(device: UInt64) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        let major = (device >> 8) & 0xFFF | (device >> 32) & ~UInt64(0xFFF)
        let minor = device & 0xFF | (device >> 12) & ~UInt64(0xFF)
        let wanted = "\(major):\(minor)"
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2] == wanted, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count
            else { continue }
            return String(fields[dash + 1])
        }
        return nil
    }
}
