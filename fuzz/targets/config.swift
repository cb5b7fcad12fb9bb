// libFuzzer target: the configuration loader (AgentConfiguration.load: syntax, decoding, nested keys, choices,
// path resolution) on a file in a per-process temporary directory — see fuzz/README.md.
import Foundation
@testable import DropboxAgent

nonisolated(unsafe) private var configPath: String = {
    let dir = NSTemporaryDirectory() + "dropbox-fuzz-config-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "dropbox-fuzz-config-\(getpid())") }
    return dir + "/agent.json"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard FileManager.default.createFile(atPath: configPath, contents: bytes) else {
        fatalError("cannot write \(configPath)")
    }
    do {
        let config = try AgentConfiguration.load(path: configPath)
        _ = config.resolved(relativeTo: "/")
    } catch {
        _ = "\(error)"
    }
    return 0
}
