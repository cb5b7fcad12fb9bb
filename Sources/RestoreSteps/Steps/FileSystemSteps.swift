internal import Delivery
internal import Logging
internal import FoundationEssentials
internal import Glibc

/// Small filesystem helpers the steps share; failures become ``RestoreError``s that say which path.
enum FileSystemSteps {
    static func createDirectory(_ path: String) throws(RestoreError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw RestoreError(
                .workingAreaUnwritable, "cannot create \(path): \(ErrorText.describe(error))",
                hint: "Check free space and permissions of agent.restoreDirectory.")
        }
    }

    /// ``AtomicFile/write(_:to:mode:)``: temp file, fsync, rename, directory fsync — a crash never leaves a
    /// half-written file behind.
    static func writeAtomically(_ data: Data, to path: String) throws(RestoreError) {
        do { try AtomicFile.write(data, to: path) } catch {
            throw RestoreError(
                .workingAreaUnwritable, "cannot write \(path): \(error)",
                hint: "Check free space and permissions of agent.restoreDirectory.")
        }
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func isDirectory(_ path: String) -> Bool {
        var isDir = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// Moves (renames) `source` to `destination`, replacing nothing.
    static func move(_ source: String, to destination: String) throws(RestoreError) {
        guard rename(source, destination) == 0 else {
            throw RestoreError(
                .workingAreaUnwritable, "cannot move \(source) to \(destination): \(String(cString: strerror(errno)))")
        }
    }

    /// Total size of the regular files under `path`.
    static func treeSize(_ path: String) -> Int64 {
        func regularSize(_ file: String) -> Int64 {
            var st = stat()
            guard lstat(file, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return 0 }
            return Int64(st.st_size)
        }
        guard let items = try? FileManager.default.subpathsOfDirectory(atPath: path) else { return regularSize(path) }
        return items.reduce(0) { $0 + regularSize(path + "/" + $1) }
    }
}
