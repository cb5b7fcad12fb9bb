internal import CArchive
internal import FoundationEssentials
internal import Glibc

extension SafeArchive {
    /// The member names of the first `limit` entries of a tar archive (any compression libarchive reads),
    /// read without extracting anything: enough to tell what a tar holds (a download package's raw tar starts
    /// with `…/raw/uid___….asdm.sdm/`) without reading it whole.
    ///
    /// - Throws: ``DeliveryError`` `archiveCorrupt` when the file is not a readable tar.
    public static func leadingEntryNames(_ archivePath: String, limit: Int = 4) throws(DeliveryError) -> [String] {
        guard let reader = archive_read_new() else { throw DeliveryError(.archiveCorrupt, "archive_read_new failed") }
        defer { archive_read_free(reader) }
        archive_read_support_filter_all(reader)
        archive_read_support_format_tar(reader)
        archive_read_support_format_gnutar(reader)
        guard archive_read_open_filename(reader, archivePath, 64 * 1024) == ARCHIVE_OK else {
            throw DeliveryError(.archiveCorrupt, "cannot open '\(archivePath)' as a tar archive: \(errorText(reader))")
        }
        var names: [String] = []
        var entry: OpaquePointer?
        while names.count < limit {
            let rc = archive_read_next_header(reader, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                throw DeliveryError(
                    .archiveCorrupt, "'\(archivePath)' is not a readable tar archive: \(errorText(reader))")
            }
            names.append(archive_entry_pathname(entry).map { String(cString: $0) } ?? "")
            _ = archive_read_data_skip(reader)
        }
        return names
    }

    private static func errorText(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
