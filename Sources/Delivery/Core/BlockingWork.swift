internal import Foundation
internal import Synchronization

/// A flag a blocking C loop polls to notice that its Swift task was cancelled.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
    func cancel() { flag.store(true, ordering: .relaxed) }
}

/// Runs blocking C work (libcurl, libarchive, read/write loops) on a dedicated thread, off the cooperative pool.
enum BlockingWork {
    /// Runs `body` on a new thread and awaits its result; cancelling the calling task sets the flag `body` polls.
    static func run<T: Sendable>(
        _ body: @escaping @Sendable (CancellationFlag) throws(DeliveryError) -> T
    ) async throws(DeliveryError) -> T {
        let flag = CancellationFlag()
        let result: Result<T, DeliveryError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, DeliveryError>, Never>) in
                let thread = Thread {
                    do throws(DeliveryError) {
                        continuation.resume(returning: .success(try body(flag)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
                thread.name = "delivery-io"
                thread.stackSize = 4 << 20
                thread.start()
            }
        } onCancel: {
            flag.cancel()
        }
        return try result.get()
    }
}
