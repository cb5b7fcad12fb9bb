internal import Foundation

/// Runs blocking file-system work (directory scans, tar unpacking, copies) on a dispatch queue, so it never
/// holds a thread of the Swift cooperative pool (which has one thread per core).
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws(RestoreError) -> T) async throws(RestoreError) -> T {
        let result: Result<T, RestoreError> = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                do throws(RestoreError) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
