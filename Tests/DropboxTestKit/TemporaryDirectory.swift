public import Foundation

/// A fresh directory for one test under `FileManager.default.temporaryDirectory` (or `parent`), readable by
/// other users (nginx serves from it), removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates `<parent>/<label>-<UUID>`; `label` defaults to the calling function's name (letters and digits
    /// only).
    public init(_ label: String = #function, parent: String = FileManager.default.temporaryDirectory.path) throws {
        let safeLabel = String(label.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(60))
        path = parent + "/" + (safeLabel.isEmpty ? "test" : safeLabel) + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
    }

    /// The directory as a file URL.
    public var url: URL { URL(fileURLWithPath: path, isDirectory: true) }

    /// The path of `name` inside the directory (not created).
    public func file(_ name: String) -> String { path + "/" + name }

    /// Creates the subdirectory `name` (and its parents) and returns its path.
    @discardableResult
    public func sub(_ name: String) throws -> String {
        let p = file(name)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    /// Removes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
