import Delivery

/// The identity of request content: SHA-256 of the bytes as dropped (the status file's `sha256`, and the key
/// of idempotent re-submission).
enum RequestDigest {
    static func hex(_ bytes: [UInt8]) -> String {
        var hash = SHA256()
        hash.update(bytes)
        return hash.hexDigest()
    }
}
