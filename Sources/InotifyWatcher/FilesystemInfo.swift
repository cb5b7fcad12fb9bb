internal import Glibc

/// The filesystem that holds a directory, and whether inotify sees every change made to it.
///
/// inotify reports only changes made through this kernel: writes by other NFS/CIFS clients, by a FUSE back end
/// (sshfs, virtiofs, glusterfs) or to an overlayfs lower layer produce no event. Such filesystems must be polled.
public struct FilesystemInfo: Sendable, Equatable {
    /// A short name for the filesystem type, e.g. `"ext4"`, `"tmpfs"`, `"nfs"`, or `"unknown(0x…)"`.
    public var typeName: String
    /// The `f_type` magic number from `statfs(2)`.
    public var magic: Int
    /// Whether inotify reports every change to this filesystem. Unknown types count as unreliable.
    public var inotifyReliable: Bool

    /// Creates the description of the filesystem with the given `statfs(2)` magic number (see `linux/magic.h`).
    ///
    /// - Parameter magic: The `f_type` value.
    public init(magic: Int) {
        self.magic = magic
        if let known = Self.knownTypes[magic] {
            typeName = known.name
            inotifyReliable = known.local
        } else {
            typeName = "unknown(0x\(String(magic, radix: 16)))"
            inotifyReliable = false
        }
    }

    /// Describes the filesystem that holds `path`.
    ///
    /// The corresponding C function is `statfs`.
    ///
    /// - Parameter path: Any path on the filesystem, typically the watched directory.
    /// - Throws: ``WatcherError`` with ``WatcherError/Code/filesystemQueryFailed`` (or the code of a missing or
    ///   unreadable path) when `statfs` fails.
    public static func of(path: String) throws(WatcherError) -> FilesystemInfo {
        guard let statfsFunction = Self.statfsFunction else {
            throw WatcherError(
                code: .filesystemQueryFailed, path: path, message: "the C library does not export statfs")
        }
        // `struct statfs` starts with `__fsword_t f_type` (a C long) on every Linux ABI; the buffer is larger than
        // the structure (120 bytes on 64-bit systems).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        guard let baseAddress = buffer.baseAddress, statfsFunction(path, baseAddress) == 0 else {
            let value = Glibc.errno
            var error = WatcherError.system("statfs", errno: value, path: path)
            if error.code == .listingFailed { error.code = .filesystemQueryFailed }
            throw error
        }
        let type = buffer.load(fromByteOffset: 0, as: Int.self)
        return FilesystemInfo(magic: Int(UInt32(truncatingIfNeeded: type)))
    }

    /// `statfs(2)` from the C library. Swift's Glibc module does not include `<sys/statfs.h>`, so the function is
    /// looked up once with `dlsym`.
    private static let statfsFunction: (@convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32)? = {
        guard let library = dlopen(nil, RTLD_NOW), let symbol = dlsym(library, "statfs") else { return nil }
        return unsafeBitCast(
            symbol, to: (@convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32).self)
    }()

    /// Magic numbers from `linux/magic.h` (and filesystems' own headers) → name, and whether every change is made
    /// through the local kernel.
    static let knownTypes: [Int: (name: String, local: Bool)] = [
        // Local disk and memory filesystems: inotify sees every change.
        0xEF53: ("ext4", true),  // ext2/ext3/ext4 share the magic
        0x0102_1994: ("tmpfs", true),
        0x5846_5342: ("xfs", true),
        0x9123_683E: ("btrfs", true),
        0xF2F5_2010: ("f2fs", true),
        0x2FC1_2FC1: ("zfs", true),
        0xCA45_1A4E: ("bcachefs", true),
        0x5265_4973: ("reiserfs", true),
        0x3153_464A: ("jfs", true),
        0x4D44: ("vfat", true),
        0x2011_BAB0: ("exfat", true),
        0x5346_544E: ("ntfs", true),
        0x8584_58F6: ("ramfs", true),
        0x7371_7368: ("squashfs", true),
        0xE0F5_E1E2: ("erofs", true),
        0x9660: ("iso9660", true),
        0x3434: ("nilfs", true),
        0xF15F: ("ecryptfs", true),
        // Network, cluster, virtual-machine-shared and stacked filesystems: changes made elsewhere are invisible.
        0x6969: ("nfs", false),
        0x517B: ("smb", false),
        0xFF53_4D42: ("cifs", false),
        0xFE53_4D42: ("smb2", false),
        0x6573_5546: ("fuse", false),  // sshfs, virtiofs, glusterfs, s3fs, …
        0x794C_7630: ("overlayfs", false),
        0x0102_1997: ("9p", false),
        0x00C3_6400: ("ceph", false),
        0x5346_414F: ("afs", false),
        0x6B41_4653: ("afs", false),
        0x7375_7245: ("coda", false),
        0x0116_1970: ("gfs2", false),
        0x7461_636F: ("ocfs2", false),
        0x0BD0_0BD0: ("lustre", false),
        0x4750_4653: ("gpfs", false),
        0x1983_0326: ("beegfs", false),
        0x2003_0528: ("orangefs", false),
        0x786F_4256: ("vboxsf", false),
        0x00C0_FFEE: ("hostfs", false),
        0x0187: ("autofs", false),
        0x9FA0: ("proc", false),
        0x6265_6572: ("sysfs", false),
    ]
}
