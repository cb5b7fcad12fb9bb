// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// How ``Publisher`` lays out a publication.
public enum PublishFormat: String, Sendable, Codable {
    /// The items as files and directories under the publication directory.
    case directory
    /// One tar `<name>.tar` (streamed with libarchive, uncompressed) holding all items.
    case tar
    /// One gzip-compressed tar `<name>.tgz` holding all items.
    case tgz
}

/// Permission bits of a publication's directories and files.
public struct PublishModes: Sendable, Hashable {
    /// Mode of every directory of the publication (default 0750).
    public var directory: UInt32
    /// Mode of every file (default 0640). Hard-linked sources share it.
    public var file: UInt32

    /// Creates modes; the defaults keep a publication to its owner and group.
    public init(directory: UInt32 = 0o750, file: UInt32 = 0o640) {
        self.directory = directory & 0o7777
        self.file = file & 0o7777
    }
}

/// A small file written into a publication once its items are placed and hashed (a README listing them, a URL list).
public struct GeneratedFile: Sendable, Hashable {
    /// Its name: one path component at the top of the publication.
    public var name: String
    /// Its content.
    public var data: [UInt8]

    /// Creates a generated file.
    public init(name: String, data: [UInt8]) {
        self.name = name
        self.data = data
    }
}

/// One file of a publication, as listed in its `MANIFEST.json`.
public struct PublishedFile: Sendable, Codable, Hashable {
    /// Path relative to the publication directory.
    public var relativePath: String
    /// Size in bytes.
    public var size: Int64
    /// Lowercase hex SHA-256 of the content.
    public var sha256: String
}

/// A completed publication.
public struct PublishedResult: Sendable, Codable, Hashable {
    /// The publication directory (`<area>/<name>`).
    public var path: String
    /// Every published file except the manifest itself, sorted by path.
    public var files: [PublishedFile]
    /// Sum of the file sizes.
    public var totalBytes: Int64
    /// How many files were neither hashed nor fsynced again because ``FlushAhead`` had (nil when read back).
    public var filesFlushedAhead: Int?

    /// Creates a result (for a publication read back from its manifest).
    public init(path: String, files: [PublishedFile], totalBytes: Int64) {
        self.path = path
        self.files = files
        self.totalBytes = totalBytes
    }
}

/// Publishes results to a download area atomically.
public enum Publisher {
    /// The manifest's file name inside a publication.
    public static let manifestName = "MANIFEST.json"

    /// Atomically publishes `items` (files or directories) as `<area>/<name>`.
    ///
    /// Everything is assembled in a hidden staging directory inside `area` and renamed to `name` only when
    /// complete, so `<area>/<name>` is either absent or whole. Within one file system items are hard-linked
    /// (or moved, with `move`); across file systems they are copied and each copy is re-read and compared
    /// (SHA-256) with its source. A `MANIFEST.json` lists every file with size and SHA-256. Files become
    /// `modes.file` and directories `modes.directory` (default 0640 / 0750; hard-linked sources share the mode).
    /// All files and directories are fsynced before the final rename (files in `durable`: earlier, see
    /// ``DurableFiles``).
    /// - Parameters:
    ///   - items: files or directories; their base names must be distinct.
    ///   - area: the existing download-area directory.
    ///   - name: the publication's name: one path component, not hidden, no control characters.
    ///   - format: ``PublishFormat/directory`` or ``PublishFormat/tar``.
    ///   - move: rename items into the publication instead of linking them when on the same file system.
    ///   - modes: permission bits of the publication's directories and files (``PublishModes``).
    ///   - generated: called with the placed files (sorted by path); the files it returns are written beside them
    ///     (mode `modes.file`), hashed and listed in the manifest.
    ///   - outside: with `tar`/`tgz`, items placed beside the archive rather than in it (plots a mail links to).
    ///   - durable: files flushed and hashed ahead (``FlushAhead``): a linked or moved file that provably did not
    ///     change since is neither hashed nor fsynced again (the directory `fsync`s still make its name durable).
    ///   - archiveName: base name of the tar (`<archiveName>.tar`/`.tgz`; default `name`).
    ///   - stagingTag: names the hidden staging directory `.<stagingTag>.publishing-*` (default: `name`), so a
    ///     sweeper can tell whose staging it is when the publication's name is random.
    ///   - cancelled: checked between files and between 1 MiB blocks of hashing and copying; when set, the
    ///     publication stops with code `cancelled`, the staging directory is removed and moved items are put
    ///     back. Defaults to the flag of the ``BlockingWork`` on this thread. Call this inside
    ///     ``BlockingWork/run(_:)``: it reads, hashes and fsyncs every published byte.
    /// - Returns: the publication and its files.
    /// - Throws: ``DeliveryError`` with code `publishFailed` (or `fileSystemError`, `cancelled`); nothing is left
    ///   under `name`.
    @discardableResult
    public static func publish(
        _ items: [String], to area: String, name: String, format: PublishFormat, move: Bool = false,
        modes: PublishModes = PublishModes(), stagingTag: String? = nil,
        generated: (@Sendable ([PublishedFile]) -> [GeneratedFile])? = nil, archiveName: String? = nil,
        outside: [String] = [], durable: DurableFiles = DurableFiles(),
        cancelled: CancellationFlag? = CancellationFlag.current
    ) throws(DeliveryError) -> PublishedResult {
        let invalidName =
            name.isEmpty || name.hasPrefix(".") || name.contains("/") || name.utf8.count > 255
            || name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        if invalidName {
            throw DeliveryError(
                .publishFailed, "invalid publication name '\(name)'", hint: "use one plain path component")
        }
        guard FileSystem.isDirectory(area) else {
            throw DeliveryError(.publishFailed, "download area '\(area)' is not a directory")
        }
        let final = FileSystem.join(area, name)
        if FileSystem.exists(final) {
            throw DeliveryError(.publishFailed, "'\(final)' already exists", hint: "publications are never overwritten")
        }
        var seen = Set<String>()
        for item in items + outside {
            let base = FileSystem.baseName(item)
            guard FileSystem.exists(item) else { throw DeliveryError(.publishFailed, "'\(item)' does not exist") }
            guard base != manifestName, seen.insert(base).inserted else {
                throw DeliveryError(
                    .publishFailed, "two items are named '\(base)' (or it clashes with \(manifestName))")
            }
        }
        let tag = stagingTag.flatMap { $0.isEmpty || $0.contains("/") ? nil : $0 } ?? name
        let staging = FileSystem.join(area, ".\(tag).publishing-\(UUID().uuidString.prefix(8))")
        try FileSystem.makeDirectory(staging, mode: 0o700)
        var placement = Placement(areaDevice: deviceOf(area), modes: modes, cancelled: cancelled, durable: durable)
        do throws(DeliveryError) {
            var files: [PublishedFile] = []
            switch format {
            case .directory:
                for item in items + outside {
                    let base = FileSystem.baseName(item)
                    let target = FileSystem.join(staging, base)
                    if move && deviceOf(item) == placement.areaDevice {
                        try FileSystem.rename(item, target)
                        placement.moved.append((item, target))
                        try placement.collect(target, relative: base, into: &files)
                    } else {
                        try placement.place(item, at: target, relative: base, into: &files)
                    }
                }
            case .tar, .tgz:
                let base =
                    archiveName.flatMap { $0.isEmpty || $0.hasPrefix(".") || $0.contains("/") ? nil : $0 } ?? name
                let tarName = base + (format == .tgz ? ".tgz" : ".tar")
                let tarPath = FileSystem.join(staging, tarName)
                let writer = try TarWriter(path: tarPath, gzip: format == .tgz, cancelled: cancelled)
                for item in items where !outside.contains(item) { try writer.add(item, as: FileSystem.baseName(item)) }
                try writer.close()
                chmod(tarPath, modes.file)
                files.append(
                    PublishedFile(
                        relativePath: tarName, size: FileSystem.size(tarPath) ?? 0,
                        sha256: try SHA256.ofFile(tarPath, cancelled: cancelled)))
                for item in outside {
                    let base = FileSystem.baseName(item)
                    try placement.place(item, at: FileSystem.join(staging, base), relative: base, into: &files)
                }
            }
            files.sort { $0.relativePath < $1.relativePath }
            for extra in generated?(files) ?? [] {
                guard !extra.name.isEmpty, !extra.name.hasPrefix("."), !extra.name.contains("/"),
                    extra.name != manifestName,
                    !files.contains(where: {
                        $0.relativePath == extra.name || $0.relativePath.hasPrefix(extra.name + "/")
                    })
                else {
                    throw DeliveryError(
                        .publishFailed, "generated file '\(extra.name)' clashes with the publication's items")
                }
                let path = FileSystem.join(staging, extra.name)
                try writeFile(Data(extra.data), to: path, mode: modes.file)
                files.append(
                    PublishedFile(
                        relativePath: extra.name, size: Int64(extra.data.count),
                        sha256: try SHA256.ofFile(path, cancelled: cancelled)))
            }
            files.sort { $0.relativePath < $1.relativePath }
            let total = files.reduce(Int64(0)) { $0 + $1.size }
            try cancelled?.check("publishing '\(name)'")
            try writeManifest(name: name, format: format, files: files, total: total, in: staging, mode: modes.file)
            placement.finishWriteBack()
            for directory in placement.directories + [staging] { try? AtomicFile.syncDirectory(directory) }
            // The staging directory was private while it was assembled; it opens as it takes its final name.
            chmod(staging, modes.directory)
            // The last moment to stop: after the rename the publication is whole and visible.
            try cancelled?.check("publishing '\(name)'")
            try FileSystem.rename(staging, final)
            try? AtomicFile.syncDirectory(area)
            var result = PublishedResult(path: final, files: files, totalBytes: total)
            result.filesFlushedAhead = placement.reused
            return result
        } catch {
            placement.undoMoves()
            FileSystem.removeTree(staging)
            throw error
        }
    }

    private static func writeManifest(
        name: String, format: PublishFormat, files: [PublishedFile], total: Int64, in staging: String, mode: mode_t
    ) throws(DeliveryError) {
        struct Manifest: Encodable {
            var schema = "dropbox-agent/publication/v1"
            var name: String
            var format: PublishFormat
            var created: String
            var totalBytes: Int64
            var files: [PublishedFile]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let created = CivilTime(secondsSince1970: Date().timeIntervalSince1970).iso8601Seconds
        let data: Data
        do {
            data = try encoder.encode(
                Manifest(name: name, format: format, created: created, totalBytes: total, files: files))
        } catch {
            throw DeliveryError(.publishFailed, "cannot encode manifest: \(error)")
        }
        try writeFile(data, to: FileSystem.join(staging, manifestName), mode: mode)
    }

    /// Writes `data` to a new file (fsynced) with `mode`.
    private static func writeFile(_ data: Data, to path: String, mode: mode_t) throws(DeliveryError) {
        let writer = try HashingFileWriter(path: path, variant: .crc32, resume: false)
        let bytes = [UInt8](data)
        let failure: DeliveryError? = bytes.withUnsafeBytes { raw in
            do throws(DeliveryError) {
                try writer.write(raw)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        try writer.finish()
        chmod(path, mode)
    }

    static func deviceOf(_ path: String) -> UInt64? {
        var st = stat()
        return lstat(path, &st) == 0 ? UInt64(st.st_dev) : nil
    }
}
