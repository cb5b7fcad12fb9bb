/// Progress of a transfer: bytes done so far and the total, when known.
///
/// Called from arbitrary threads (the stores report at most about ten times a second, plus once at the end).
public typealias ProgressHandler = @Sendable (_ bytesDone: Int64, _ bytesTotal: Int64?) -> Void

/// A file the caller expects to retrieve from an archive store, with what is known about it.
public struct ExpectedFile: Sendable, Hashable, Codable {
    /// The archive (NGAS) file id; also the file's name in a flat store.
    public var fileId: String
    /// The size in bytes, if known; a retrieved file of any other size is rejected.
    public var size: Int64?
    /// The NGAS checksum string (decimal, possibly signed), if known.
    public var checksum: String?
    /// Which CRC ``checksum`` is; `nil` means ``ChecksumVariant/crc32`` when a checksum is given.
    public var checksumVariant: ChecksumVariant?

    /// Creates an expectation.
    public init(fileId: String, size: Int64? = nil, checksum: String? = nil, checksumVariant: ChecksumVariant? = nil) {
        self.fileId = fileId
        self.size = size
        self.checksum = checksum
        self.checksumVariant = checksumVariant
    }

    /// The variant to compute: the declared one, else `crc32` (NGAS's default plug-in).
    var effectiveVariant: ChecksumVariant { checksumVariant ?? .crc32 }
}

/// A file retrieved and verified at ``path``.
public struct RetrievedFile: Sendable, Hashable {
    /// The archive file id.
    public var fileId: String
    /// Where the verified file now is.
    public var path: String
    /// Its size in bytes.
    public var size: Int64
    /// Its checksum as unsigned decimal in the expected variant (`crc32` if none was expected), if computed.
    public var checksum: String?
    /// Bytes that crossed the network (or were copied) for this retrieval, including failed attempts; 0 for a cache hit.
    public var bytesTransferred: Int64
    /// Whether the file came from a ``FileCache`` without fetching.
    public var fromCache: Bool
    /// The file name the server suggested in `Content-Disposition`, if any.
    public var serverFileName: String?

    /// Creates a record of a retrieved file.
    public init(
        fileId: String, path: String, size: Int64, checksum: String?, bytesTransferred: Int64,
        fromCache: Bool, serverFileName: String? = nil
    ) {
        self.fileId = fileId
        self.path = path
        self.size = size
        self.checksum = checksum
        self.bytesTransferred = bytesTransferred
        self.fromCache = fromCache
        self.serverFileName = serverFileName
    }
}

/// Somewhere archived files can be retrieved from by file id (an NGAS server, a local directory).
public protocol ArchiveStore: Sendable {
    /// A short human description (URL or directory) for logs and error messages.
    var description: String { get }

    /// Retrieves `file` to `destination`, verifying its size and checksum when the expectation has them.
    ///
    /// On success `destination` holds exactly the verified bytes; on failure it does not exist (a resumable
    /// `destination.part` may remain for HTTP stores).
    /// - Parameters:
    ///   - file: what to fetch and how to verify it.
    ///   - destination: the path to create (its directory must exist).
    ///   - progress: called as bytes arrive.
    /// - Returns: what was retrieved.
    /// - Throws: ``DeliveryError``; `CancellationError` is reported as code `cancelled`.
    func retrieve(
        _ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler
    ) async throws
        -> RetrievedFile
}

/// File-id rules shared by the stores and the cache.
enum FileIdentifier {
    /// Rejects ids that could name something other than one flat file (see ``PlainFileName/isValid(_:)``):
    /// empty, `.`/`..`, `/`, `\`, NUL or control characters, or longer than 255 bytes.
    static func validate(_ fileId: String) throws(DeliveryError) {
        if !PlainFileName.isValid(fileId) {
            throw DeliveryError(
                .invalidFileId, "invalid archive file id '\(fileId.debugDescription.dropFirst().dropLast())'",
                hint: "file ids are flat names: no '/', '\\', '..' or control characters, at most 255 bytes")
        }
    }
}
