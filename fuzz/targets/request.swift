// libFuzzer target: the request parser and validator (both request forms) — see fuzz/README.md.
import Foundation
@testable import DropboxAgent

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        let parsed = try RequestParser.parse(bytes)
        _ = parsed.request
    } catch {
        // A rejection must say why, with at least one problem and a stable code.
        if error.problems.isEmpty || error.code.rawValue.isEmpty { fatalError("rejection without a reason: \(error)") }
        _ = error.message
    }
    return 0
}
