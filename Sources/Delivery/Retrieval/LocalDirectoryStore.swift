// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// An archive store that is a local directory holding files flat under their file id (`<root>/<fileId>`).
///
/// Retrieval copies the file (a reflink where the file system supports it) while checksumming it, writes
/// `<destination>.part`, fsyncs it and renames it into place; size and checksum are verified.
public struct LocalDirectoryStore: ArchiveStore {
    /// The directory holding the files.
    public let root: String

    /// Creates a store over `root`.
    public init(root: String) { self.root = root }

    /// `local directory <root>`.
    public var description: String { "local directory \(root)" }

    /// Copies and verifies `file`; see ``ArchiveStore/retrieve(_:to:progress:)``.
    public func retrieve(
        _ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler
    )
        async throws -> RetrievedFile
    {
        try FileIdentifier.validate(file.fileId)
        let source = FileSystem.join(root, file.fileId)
        let store = description
        return try await BlockingWork.run { (cancelled) throws(DeliveryError) in
            try Self.copy(file, from: source, to: destination, store: store, cancelled: cancelled, progress: progress)
        }
    }

    private static func copy(
        _ file: ExpectedFile, from source: String, to destination: String, store: String,
        cancelled: CancellationFlag, progress: ProgressHandler
    ) throws(DeliveryError) -> RetrievedFile {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            if errno == ENOENT {
                throw DeliveryError(.fileNotFound, "'\(file.fileId)' is not in \(store)")
            }
            throw .posix("cannot open", path: source, errno: errno)
        }
        defer { close(input) }
        var st = stat()
        fstat(input, &st)
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw DeliveryError(.fileNotFound, "'\(file.fileId)' in \(store) is not a regular file")
        }
        let total = Int64(st.st_size)
        if let expected = file.size, expected != total {
            throw Verification.check(file, size: total, checksum: nil, source: store)!
        }
        let part = destination + ".part"
        let writer = try HashingFileWriter(path: part, variant: file.effectiveVariant, resume: false)
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var lastReport = ContinuousClock.now
        do throws(DeliveryError) {
            while true {
                if cancelled.isCancelled { throw DeliveryError(.cancelled, "copy of '\(file.fileId)' cancelled") }
                let n = read(input, buffer, size)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DeliveryError.posix("cannot read", path: source, errno: errno)
                }
                if n == 0 { break }
                try writer.write(UnsafeRawBufferPointer(start: buffer, count: n))
                if ContinuousClock.now - lastReport >= .milliseconds(100) {
                    lastReport = .now
                    progress(writer.bytesWritten, total)
                }
            }
            let checksum = try writer.finish()
            if let error = Verification.check(file, size: writer.bytesWritten, checksum: checksum, source: store) {
                throw error
            }
            try FileSystem.rename(part, destination)
            progress(writer.bytesWritten, total)
        } catch {
            writer.closeQuietly()
            FileSystem.remove(part)
            throw error
        }
        return RetrievedFile(
            fileId: file.fileId, path: destination, size: writer.bytesWritten,
            checksum: writer.checksum?.decimalString, bytesTransferred: writer.bytesWritten, fromCache: false,
            serverFileName: file.fileId)
    }
}
