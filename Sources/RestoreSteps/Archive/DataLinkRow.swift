public import Delivery
internal import FoundationEssentials
internal import Glibc

/// One row of an IVOA DataLink answer (`ID, access_url, service_def, error_message, semantics, description,
/// content_type, content_length, readable`), as the ALMA archive's `datalink/sync` gives them.
public struct DataLinkRow: Sendable, Hashable {
    /// The identifier the link belongs to (the MOUS uid for top-level links).
    public var id: String
    /// Where the file can be fetched (`…/dataPortal/<file name>`); nil for service rows and error rows.
    public var accessURL: String?
    /// The service descriptor a nested link points to (`DataLink.<tar name>`), if any.
    public var serviceDef: String?
    /// The error the service reported for this link, if any.
    public var errorMessage: String?
    /// What the link is: `#this`, `#auxiliary`, `#progenitor`, `#documentation`, …
    public var semantics: String?
    /// The service's description.
    public var description: String?
    /// The MIME type (`application/x-tar`, `application/x-votable+xml;content=datalink`).
    public var contentType: String?
    /// The size in bytes, if stated.
    public var contentLength: Int64?
    /// Whether the current identity may use the link (`readable`), if stated.
    public var readable: Bool?

    /// Creates a row.
    public init(
        id: String, accessURL: String? = nil, serviceDef: String? = nil, errorMessage: String? = nil,
        semantics: String? = nil, description: String? = nil, contentType: String? = nil,
        contentLength: Int64? = nil, readable: Bool? = nil
    ) {
        self.id = id
        self.accessURL = accessURL
        self.serviceDef = serviceDef
        self.errorMessage = errorMessage
        self.semantics = semantics
        self.description = description
        self.contentType = contentType
        self.contentLength = contentLength
        self.readable = readable
    }

    /// A nested service row (a `service_def` and no `access_url`): it drills into a tar's contents and names
    /// no file itself.
    public var isServiceRow: Bool { serviceDef != nil && accessURL == nil }

    /// The last path component of ``accessURL``, percent-decoded, if it is a safe file name
    /// (``PlainFileName/isOrdinary(_:)``); nil otherwise.
    public var fileName: String? {
        guard let name = lastPathComponent, Self.isSafeFileName(name) else { return nil }
        return name
    }

    /// The file to expect when fetching this link: ``fileName`` as file id, ``contentLength`` as size.
    public var expectedFile: ExpectedFile? {
        fileName.map { ExpectedFile(fileId: $0, size: contentLength) }
    }

    /// The decoded last path component of ``accessURL``, unvalidated.
    var lastPathComponent: String? {
        guard let url = accessURL, let components = URLComponents(string: url) else { return nil }
        let path = components.percentEncodedPath
        guard let last = path.split(separator: "/", omittingEmptySubsequences: false).last, !last.isEmpty else {
            return nil
        }
        return TextEssentials.percentDecoded(String(last))
    }

    static func isSafeFileName(_ name: String) -> Bool { PlainFileName.isOrdinary(name) }
}
