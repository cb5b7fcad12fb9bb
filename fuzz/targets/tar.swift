// libFuzzer target: the safe tar extractor (Delivery SafeArchive.extract: tar, gzip, any format libarchive
// reads) on crafted archives. Each input is written to <tmp>/dropbox-fuzz-tar-<pid>/in/archive and extracted
// into <tmp>/dropbox-fuzz-tar-<pid>/in/a/b/target, which is wiped after every run. After each run nothing may
// exist outside the target but the archive itself (an escape by `..`, an absolute path or a link aborts the
// run), and every symbolic link extracted must resolve inside the target — see fuzz/README.md.
import Foundation
@testable import Delivery

private let root = NSTemporaryDirectory() + "dropbox-fuzz-tar-\(getpid())"
private let sandbox = root + "/in"
private let archive = sandbox + "/archive"
private let target = sandbox + "/a/b/target"
private let limits = ArchiveLimits(maxEntries: 2_000, maxTotalBytes: 32 << 20, maxEntryBytes: 16 << 20)

nonisolated(unsafe) private var prepared: Bool = {
    try? FileManager.default.removeItem(atPath: root)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "dropbox-fuzz-tar-\(getpid())") }
    return true
}()

private func everything(under path: String) -> [String] {
    (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).map { path + "/" + $0 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    precondition(prepared)
    do {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
    } catch { fatalError("cannot create \(target): \(error)") }
    guard FileManager.default.createFile(atPath: archive, contents: Data(bytes: data, count: size)) else {
        fatalError("cannot write \(archive)")
    }
    do {
        let summary = try SafeArchive.extract(archive, into: target, limits: limits, cancelled: nil)
        _ = summary.entries
    } catch {
        _ = error.message
    }
    // Nothing outside the target but the archive and the directories leading to the target.
    let allowed: Set<String> = [archive, sandbox + "/a", sandbox + "/a/b", target]
    for path in everything(under: sandbox) where !allowed.contains(path) && !path.hasPrefix(target + "/") {
        fatalError("extraction escaped the target: \(path) exists")
    }
    // Every link left in the target resolves beneath it.
    let realTarget = URL(fileURLWithPath: target).resolvingSymlinksInPath().path
    for path in everything(under: target) {
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil else { continue }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if resolved != realTarget && !resolved.hasPrefix(realTarget + "/") && resolved != path {
            fatalError("link \(path) resolves outside the target: \(resolved)")
        }
    }
    // Wipe for the next run (make everything writable first: an archive may carry read-only directories).
    for path in everything(under: sandbox) { chmod(path, 0o700) }
    try? FileManager.default.removeItem(atPath: sandbox)
    return 0
}
