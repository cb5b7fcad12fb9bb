// libFuzzer target: the OUSStatus XML reader (OUSStatusSessions.read) — see fuzz/README.md.
import Foundation
@testable import RestoreSteps

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let xml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let read = try OUSStatusSessions.read(xml)
        _ = read.sessions.count + read.notes.count
    } catch {
        _ = error.message
    }
    return 0
}
