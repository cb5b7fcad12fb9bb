import Foundation
import Logging
import RestoreSteps
import Synchronization
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// Status writes for one request never go backwards, however many threads report at once.
@Suite(.tags(.endToEnd), .selected(.endToEnd)) struct StatusOrderTests {
    @Test func concurrentReportsAndTransitionsNeverLandOutOfOrder() async throws {
        let dir = NSTemporaryDirectory() + "status-order-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/r.status.json"
        let publisher = StatusPublisher(
            path: path, document: StatusDocument(request: "r", state: .queued), progressInterval: 0,
            logger: Logger(label: "test"))
        try publisher.transition(to: .running, step: .rawdata)

        // A reader that reads every version it can, in a tight loop, while the writers run.
        let stop = Atomic<Bool>(false)
        let seen = Mutex<[Int]>([])
        let reader = Thread {
            while !stop.load(ordering: .relaxed) {
                if let doc = StatusPublisher.existing(at: path), let n = doc.sequence {
                    seen.withLock { $0.append(n) }
                }
            }
        }
        reader.start()
        // Progress from four blocking threads (as extraction and publishing report) and state changes from tasks.
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread {
                            for i in 0..<100 {
                                publisher.report(
                                    StepProgress(bytesDone: Int64(i), bytesTotal: 100, message: "thread \(t)"))
                            }
                            done.resume()
                        }.start()
                    }
                }
            }
            group.addTask {
                for step in [StepName.calibration, .ppr, .casa, .deliver] {
                    try? publisher.transition(to: .running, step: step)
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        try publisher.update { $0.progress = nil }
        stop.store(true, ordering: .relaxed)
        while !reader.isFinished { try await Task.sleep(for: .milliseconds(5)) }

        let sequences = seen.withLock { $0 }
        #expect(sequences.count > 10, "the reader saw the writes")
        let backwards = zip(sequences, sequences.dropFirst()).filter { $0 > $1 }
        #expect(backwards.isEmpty, "status went backwards: \(backwards.prefix(5))")
        let final = try #require(StatusPublisher.existing(at: path))
        #expect(final.sequence == publisher.document.sequence, "the newest document is the one on disk")
        #expect(final.step?.name == StepName.deliver.rawValue)
        #expect(final.progress == nil)
    }

    /// The rename of a status write happens only when the commit check agrees (the lease is still this job's, under
    /// its lock): a refused write leaves the file as it was, throws LeaseLost, and leaves no temporary behind.
    @Test func aWriteTheLeaseRefusesLeavesTheFileAndNoTemporary() throws {
        let dir = NSTemporaryDirectory() + "status-commit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/r.status.json"
        let allowed = Atomic<Bool>(true)
        let publisher = StatusPublisher(
            path: path, document: StatusDocument(request: "r", state: .queued), logger: Logger(label: "test"),
            commit: { rename in
                guard allowed.load(ordering: .relaxed) else { return false }
                try rename()
                return true
            })
        try publisher.transition(to: .running, step: .rawdata)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        allowed.store(false, ordering: .relaxed)
        #expect(throws: LeaseLost.self) { try publisher.transition(to: .failed, step: .rawdata, message: "late") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the refused document never became visible")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["r.status.json"], "no temporary left")
    }
}
