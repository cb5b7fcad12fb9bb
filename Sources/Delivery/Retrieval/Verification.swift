/// Checks a completed file against an ``ExpectedFile``.
enum Verification {
    /// Returns `nil` when size and checksum are as expected, else the error explaining the difference.
    static func check(_ file: ExpectedFile, size: Int64, checksum: Checksum?, source: String) -> DeliveryError? {
        if let expected = file.size, expected != size {
            return DeliveryError(
                .sizeMismatch,
                "'\(file.fileId)' from \(source) has \(size) bytes, expected \(expected)",
                hint: "the archive copy or the transfer is damaged; the catalogue size may also be wrong")
        }
        if let expected = file.checksum {
            guard let expectedValue = Checksum.parse(expected) else {
                return DeliveryError(
                    .invalidChecksum, "expected checksum '\(expected)' of '\(file.fileId)' is not a CRC value")
            }
            if let checksum, checksum.value != expectedValue {
                return DeliveryError(
                    .checksumMismatch,
                    "'\(file.fileId)' from \(source) has \(checksum.variant.rawValue) \(checksum.value), expected \(expectedValue) (\(expected))",
                    hint: "the bytes are damaged in transfer or in the archive; the file was not kept")
            }
        }
        return nil
    }
}
