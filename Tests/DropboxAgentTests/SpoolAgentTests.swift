import Foundation
import RestoreSteps
import Synchronization
import Testing
import DropboxTestKit

@testable import DropboxAgent

@Suite(.serialized, .tags(.endToEnd), .selected(.endToEnd)) struct SpoolAgentTests {
    @Test func aValidRequestRunsEveryStepOnceAndSucceeds() async throws {
        let h = try AgentHarness()
        h.start()
        try h.drop("r1.json", AgentHarness.validRequest)
        let s = try await h.waitForState("r1", .succeeded)
        try await h.shutdown()
        #expect(h.log.steps(for: "r1") == StepName.allCases)
        #expect(s.result?.measurementSets == ["x.ms"])
        #expect(s.mous == "uid://A001/X1284/X265f")
        #expect(s.sha256 == RequestDigest.hex(Array(AgentHarness.validRequest.utf8)))
        #expect(s.notifications?.first?.to == "pi@example.org")
        let states = s.history.map(\.state)
        #expect(states.first == .queued || states.first == .waiting)
        #expect(states.contains(.running) && states.last == .succeeded)
        #expect(s.history.compactMap(\.step?.number) == [1, 2, 3, 4, 5, 6])
        #expect(s.requestFile.map { FileManager.default.fileExists(atPath: $0) } == true, "the request is kept")
        #expect(!FileManager.default.fileExists(atPath: h.spool + "/r1.json"), "the request left the spool")
    }

    @Test func aSlowInPlaceWriterIsNotTakenUntilComplete() async throws {
        let h = try AgentHarness(settle: 0.3)
        h.start()
        let text = AgentHarness.validRequest
        let half = text.index(text.startIndex, offsetBy: text.count / 2)
        try h.write("slow.json", String(text[..<half]))
        let waiting = try await h.waitForState("slow", .waiting)
        #expect(waiting.progress?.message?.contains("incomplete") == true)
        try await Task.sleep(for: .milliseconds(700))  // the writer pausing mid-file
        #expect(h.log.steps(for: "slow").isEmpty, "a half-written request must not run")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: h.spool + "/slow.json"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text[half...].utf8))
        try handle.close()
        _ = try await h.waitForState("slow", .succeeded)
        try await h.shutdown()
        #expect(h.log.steps(for: "slow").count == 6)
    }

    @Test func anInterruptedWriterNeverRunsAndIsRejectedAfterTheTimeout() async throws {
        let h = try AgentHarness(settle: 0.2, incompleteTimeout: 1.5)
        h.start()
        try h.write("cut.json", String(AgentHarness.validRequest.prefix(30)))
        let s = try await h.waitForState("cut", .rejected, timeout: 15)
        try await h.shutdown()
        #expect(h.log.steps(for: "cut").isEmpty)
        #expect(s.error?.code == "incompleteRequest")
        #expect(s.requestFile.map { FileManager.default.fileExists(atPath: $0) } == true, "rejected requests are kept")
        #expect(FileManager.default.fileExists(atPath: (s.requestFile ?? "") + ".reason.txt"))
    }

    @Test func renameIntoPlaceIsTakenOnceAndTemporaryNamesAreIgnored() async throws {
        let h = try AgentHarness()
        h.start()
        try h.write(".once.json.Xa1b2C", AgentHarness.validRequest)  // rsync temp
        try h.write("sedAb12Cd", AgentHarness.validRequest)  // sed -i temp
        try h.write("once.json.part", AgentHarness.validRequest)
        guard rename(h.spool + "/.once.json.Xa1b2C", h.spool + "/once.json") == 0 else { throw CancellationError() }
        _ = try await h.waitForState("once", .succeeded)
        try await Task.sleep(for: .milliseconds(1500))  // a rescan has passed
        try await h.shutdown()
        #expect(h.log.steps(for: "once").count == 6)
        #expect(h.log.count == 6, "temporary names never run")
        #expect(FileManager.default.fileExists(atPath: h.spool + "/sedAb12Cd"), "ignored files are left alone")
        #expect(FileManager.default.fileExists(atPath: h.spool + "/once.json.part"))
    }

    @Test func hostileDropsAreRejectedPreciselyAndTheAgentStaysResponsive() async throws {
        let h = try AgentHarness(settle: 0.2)
        h.start()
        let spool = h.spool
        #expect(symlink("/etc/shadow", spool + "/shadow.json") == 0)
        #expect(mkfifo(spool + "/fifo.json", 0o644) == 0)
        try h.write("target.txt", AgentHarness.validRequest)
        #expect(link(spool + "/target.txt", spool + "/hardlink.json") == 0)
        try FileManager.default.createDirectory(atPath: spool + "/dir.json", withIntermediateDirectories: false)
        try Data(count: 10 * 1024 * 1024).write(to: URL(fileURLWithPath: spool + "/huge.json"))
        try Data([0x7B, 0x22, 0x6D, 0x6F, 0x75, 0x73, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D]).write(
            to: URL(fileURLWithPath: spool + "/utf8.json"))
        try h.write("deep.json", String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))
        try h.write(
            "types.json", #"{"mous": ["uid://A001/X1284/X265f"], "email": "x@y.org", "delivery": {"format": 1}}"#)
        let expected: [String: String] = [
            "shadow": "symlink", "fifo": "notRegularFile", "hardlink": "hardLink", "dir": "notRegularFile",
            "huge": "tooLarge",
            "utf8": "invalidJSON", "deep": "invalidJSON", "types": "invalidRequest",
        ]
        for (name, code) in expected {
            let s = try await h.waitForState(name, .rejected, timeout: 10)
            #expect(s.error?.code == code, "\(name): \(s.error?.code ?? "nil") \(s.error?.message ?? "")")
            #expect((s.error?.message.count ?? 0) > 10)
        }
        let types = try #require(h.status("types"))
        #expect(
            types.error?.message.contains("$.mous") == true
                && types.error?.message.contains("$.delivery.format") == true)
        // Nothing hostile was followed or deleted: the link and FIFO were moved aside, /etc/shadow untouched.
        #expect(FileManager.default.fileExists(atPath: "/etc/shadow"))
        let rejected = try FileManager.default.contentsOfDirectory(atPath: spool + "/.dropbox-agent/rejected")
        #expect(rejected.filter { $0.hasSuffix(".reason.txt") }.count >= expected.count)
        // Still responsive.
        try h.drop("after.json", AgentHarness.validRequest)
        _ = try await h.waitForState("after", .succeeded)
        try await h.shutdown()
        #expect(h.log.count == 6)
    }

    @Test func cancellationStopsTheRunningStep() async throws {
        let h = try AgentHarness { step, _, _ in
            if step == .casa { try await Task.sleep(for: .seconds(60)) }
        }
        h.start()
        try h.drop("long.json", AgentHarness.validRequest)
        _ = try await h.waitForStatus("long") { $0.step?.name == "casa" }
        let start = Date()
        try Data().write(to: URL(fileURLWithPath: h.spool + "/long.cancel"))
        let s = try await h.waitForState("long", .cancelled, timeout: 10)
        #expect(Date().timeIntervalSince(start) < 5)
        try await h.shutdown()
        #expect(!h.log.steps(for: "long").contains(.deliver))
        #expect(s.error?.code == "cancelled")
        #expect(!FileManager.default.fileExists(atPath: h.spool + "/long.cancel"), "the cancel file was consumed")
    }

    @Test func cancellingAQueuedRequestEndsItWithoutRunning() async throws {
        let h = try AgentHarness { step, _, _ in
            if step == .casa { try await Task.sleep(for: .seconds(60)) }
        }
        h.start()
        try h.drop("first.json", AgentHarness.validRequest)
        _ = try await h.waitForStatus("first") { $0.step?.name == "casa" }
        try h.drop("second.json", #"{"mous": "uid://A001/X1284/X266"}"#)
        _ = try await h.waitForState("second", .queued)
        try Data().write(to: URL(fileURLWithPath: h.spool + "/second.cancel"))
        _ = try await h.waitForState("second", .cancelled)
        #expect(h.log.steps(for: "second").isEmpty)
        try Data().write(to: URL(fileURLWithPath: h.spool + "/first.cancel"))
        _ = try await h.waitForState("first", .cancelled)
        try await h.shutdown()
    }

    @Test func concurrencyIsBoundedAndRequestsRunInArrivalOrder() async throws {
        let running = RunningCounter()
        let h = try AgentHarness(maxConcurrent: 2) { step, _, _ in
            if step == .casa {
                running.enter()
                try await Task.sleep(for: .milliseconds(300))
                running.leave()
            }
        }
        h.start()
        for i in 0..<6 {
            try h.drop("c\(i).json", #"{"mous": "uid://A001/X1284/X265f", "requestId": "c\#(i)"}"#)
            try await Task.sleep(for: .milliseconds(30))
        }
        var finished: [(String, String)] = []
        for i in 0..<6 {
            let s = try await h.waitForState("c\(i)", .succeeded, timeout: 30)
            finished.append(("c\(i)", s.startedAt ?? ""))
        }
        try await h.shutdown()
        #expect(running.maximum == 2)
        let order = finished.sorted { $0.1 < $1.1 }.map(\.0)
        #expect(order == (0..<6).map { "c\($0)" }, "FIFO by arrival")
    }

    @Test func aCommitMarkerSkipsTheSettleTime() async throws {
        let h = try AgentHarness(settle: 30)
        h.start()
        try h.write("marked.json", AgentHarness.validRequest)
        _ = try await h.waitForState("marked", .waiting)
        try h.write("marked.json.ok", "")
        let s = try await h.waitForState("marked", .succeeded, timeout: 10)  // far less than the 30 s settle time
        try await h.shutdown()
        #expect(h.log.steps(for: "marked").count == 6)
        #expect(
            !FileManager.default.fileExists(atPath: h.spool + "/marked.json.ok"), "the marker went with the request")
        #expect(FileManager.default.fileExists(atPath: (s.requestFile ?? "") + ".ok"))
    }

    @Test func oneDropperCannotTakeEverySlot() async throws {
        let perOwner = OwnerCounter()
        let h = try AgentHarness(maxConcurrent: 2, maxPerDropper: 1, allowedOwners: ["*"]) { step, context, _ in
            if step == .casa {
                let owner = context.job.name.hasPrefix("other") ? "other" : "root"
                perOwner.enter(owner)
                try await Task.sleep(for: .milliseconds(300))
                perOwner.leave(owner)
            }
        }
        h.start()
        for i in 0..<3 { try h.drop("root\(i).json", #"{"mous": "uid://A001/X1284/X265f", "requestId": "r\#(i)"}"#) }
        try h.write(".other0.tmp", #"{"mous": "uid://A001/X1284/X265f", "requestId": "o0"}"#)
        #expect(chown(h.spool + "/.other0.tmp", 65534, 65534) == 0)
        #expect(rename(h.spool + "/.other0.tmp", h.spool + "/other0.json") == 0)
        for name in ["root0", "root1", "root2", "other0"] {
            _ = try await h.waitForState(name, .succeeded, timeout: 30)
        }
        try await h.shutdown()
        #expect(perOwner.maximum("root") == 1, "at most one restore of the same dropper at once")
        #expect(perOwner.maximum("other") == 1)
        #expect(perOwner.maximumTotal == 2, "the other dropper's request ran beside one of root's")
    }

    @Test func anIdenticalResubmissionLinksToTheFirstResult() async throws {
        let h = try AgentHarness()
        h.start()
        try h.drop("orig.json", AgentHarness.validRequest)
        let first = try await h.waitForState("orig", .succeeded)
        try h.drop("again.json", AgentHarness.validRequest)
        let second = try await h.waitForState("again", .succeeded)
        try await h.shutdown()
        #expect(h.log.steps(for: "again").isEmpty, "not run again")
        #expect(second.linkedTo?.request == "orig")
        #expect(second.result == first.result)
    }

    @Test func aCleanStopCheckpointsAndARestartResumesAtTheNextStep() async throws {
        let gate = Gate()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)").path
        let h = try AgentHarness(root: root) { step, _, _ in
            if step == .calibration { await gate.wait() }
        }
        h.start()
        try h.drop("resume.json", AgentHarness.validRequest)
        _ = try await h.waitForStatus("resume") { $0.step?.name == "calibration" }
        let stopping = Task { try await h.shutdown() }
        try await Task.sleep(for: .milliseconds(200))
        gate.open()  // the running step finishes within the grace period
        try await stopping.value
        let paused = try #require(h.status("resume"))
        #expect(paused.state == .queued)
        #expect(h.log.steps(for: "resume") == [.prepare, .rawdata, .calibration])

        let h2 = try AgentHarness(root: root)
        h2.start()
        let s = try await h2.waitForState("resume", .succeeded)
        try await h2.shutdown()
        #expect(h2.log.steps(for: "resume") == [.ppr, .casa, .deliver], "completed steps are not run again")
        #expect(s.attempt == 1, "a clean stop does not count as a failed attempt")
    }
}

/// Counts concurrent entries and remembers the maximum.
final class RunningCounter: Sendable {
    private let state = Mutex((current: 0, maximum: 0))
    func enter() {
        state.withLock {
            $0.current += 1
            $0.maximum = max($0.maximum, $0.current)
        }
    }
    func leave() { state.withLock { $0.current -= 1 } }
    var maximum: Int { state.withLock { $0.maximum } }
}

/// A one-shot gate a test step can wait on.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { c in
            let resumeNow = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }
    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}

/// Concurrent entries per owner, with maxima.
final class OwnerCounter: Sendable {
    private let state = Mutex<(current: [String: Int], maximum: [String: Int], total: Int, maxTotal: Int)>(
        ([:], [:], 0, 0))
    func enter(_ owner: String) {
        state.withLock {
            $0.current[owner, default: 0] += 1
            $0.maximum[owner] = max($0.maximum[owner] ?? 0, $0.current[owner]!)
            $0.total += 1
            $0.maxTotal = max($0.maxTotal, $0.total)
        }
    }
    func leave(_ owner: String) {
        state.withLock {
            $0.current[owner, default: 0] -= 1
            $0.total -= 1
        }
    }
    func maximum(_ owner: String) -> Int { state.withLock { $0.maximum[owner] ?? 0 } }
    var maximumTotal: Int { state.withLock { $0.maxTotal } }
}
