import Delivery
import Foundation
import Synchronization
import Testing
@testable import RestoreSteps

/// Step 3 from a package copies each calibration product in chunks: cancelling the restore stops inside a large
/// file, and leaves neither the partial temporary nor the product behind (a resumed step copies it again).
@Suite("Package products: cancellable inside a file", .serialized)
struct PackageStagingCancelTests {
    /// Holds the copy at its first report inside the big product until the test has cancelled.
    final class HoldingReporter: StepReporter {
        let small: Int64
        let insideBig = Atomic<Bool>(false)
        let cancelRequested = Atomic<Bool>(false)
        let bytesDone = Mutex<Int64>(0)
        init(small: Int64) { self.small = small }
        func report(_ progress: StepProgress) {
            let done = progress.bytesDone ?? 0
            bytesDone.withLock { $0 = max($0, done) }
            guard done > small, !insideBig.load(ordering: .relaxed), progress.fraction ?? 0 < 1 else { return }
            insideBig.store(true, ordering: .relaxed)
            let deadline = ContinuousClock.now + .seconds(60)
            while !cancelRequested.load(ordering: .relaxed) && ContinuousClock.now < deadline { usleep(1000) }
        }
    }

    @Test func cancellingDuringALargeProductStopsInsideIt() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("staging-cancel-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir + "/package", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/products", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let smallData = Data((0..<4096).map { UInt8($0 & 0xff) })
        try smallData.write(to: URL(fileURLWithPath: dir + "/package/small.txt"))
        // 320 MiB of distinct 1 MiB blocks of random bytes.
        let big = dir + "/package/big.caltables.tgz"
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
        var block = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }
        let blocks = 320
        for i in 0..<blocks {
            block[i] &+= 1
            try handle.write(contentsOf: block)
        }
        try handle.close()
        let bigSize = Int64(blocks << 20)
        let staging = PackageStaging(
            location: dir + "/package", memberDirectory: dir + "/package", structureSource: "defaults",
            casaVersion: nil,
            pipelineVersion: nil,
            products: [
                StagedProduct(name: "small.txt", source: dir + "/package/small.txt", size: Int64(smallData.count)),
                StagedProduct(name: "big.caltables.tgz", source: big, size: bigSize),
            ],
            asdms: [:], notes: [])
        let reporter = HoldingReporter(small: Int64(smallData.count))
        let task = Task {
            try await PackageStagingSteps.stageProducts(staging, into: dir + "/products", reporter: reporter)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while !reporter.insideBig.load(ordering: .relaxed) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let started = reporter.insideBig.load(ordering: .relaxed)
        #expect(started, "the copy of the big product started")
        let cancelledAt = ContinuousClock.now
        task.cancel()
        reporter.cancelRequested.store(true, ordering: .relaxed)
        do {
            try await task.value
            Issue.record("staging finished although it was cancelled")
        } catch let error as RestoreError {
            #expect(error.code == .cancelled)
        }
        let elapsed = ContinuousClock.now - cancelledAt
        // Stopping inside the file is asserted below; this bound only catches a hang (generous for a loaded machine).
        #expect(elapsed < .seconds(10), "cancel took \(elapsed)")
        let reached = reporter.bytesDone.withLock { $0 }
        #expect(reached < Int64(smallData.count) + bigSize, "stopped inside the big file")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/products").sorted()
        #expect(left == ["small.txt"], "the finished product stays, the partial one is gone: \(left)")
    }
}
