import Foundation
import Logging
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// The dashboard's in-memory index: fed by the documents the agent publishes, bounded, counting each conclusion once.
@Suite struct DashboardIndexTests {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func doc(
        _ name: String, _ state: RequestState, sequence: Int, finishedSecondsAgo: Double? = nil
    )
        -> StatusDocument
    {
        var d = StatusDocument(request: name, state: state, at: Timestamp.string(now))
        d.sequence = sequence
        if let ago = finishedSecondsAgo { d.finishedAt = Timestamp.string(now.addingTimeInterval(-ago)) }
        return d
    }

    @Test func liveThenFinishedMovesTheRowAndCountsOnce() {
        var index = DashboardIndex()
        index.apply(doc("a", .queued, sequence: 1))
        index.apply(doc("a", .running, sequence: 2))
        #expect(index.live["a"]?.state == .running && index.finished.isEmpty)
        index.apply(doc("a", .succeeded, sequence: 3, finishedSecondsAgo: 10))
        #expect(index.live.isEmpty && index.finished.map(\.request) == ["a"])
        // The mail state added later amends the row without counting the request again.
        var mailed = doc("a", .succeeded, sequence: 4, finishedSecondsAgo: 10)
        mailed.notifications = [.init(to: "pi@example.org", state: "sent")]
        index.apply(mailed, amends: true)
        #expect(index.lastDay(now: now) == .init(succeeded: 1, failedOrRejected: 0))
        #expect(index.finished.first?.notifications?.count == 1)
        // A stale document (lower sequence, from a slower thread) changes nothing.
        index.apply(doc("a", .running, sequence: 2))
        #expect(index.live.isEmpty && index.finished.first?.sequence == 4)
    }

    @Test func finishedRowsAreBoundedNewestFirstAndCountersCoverTheWholeDay() {
        var index = DashboardIndex()
        let total = DashboardIndex.finishedKept * 4
        for i in 0..<total {
            // Request i finished (total - i) minutes ago; every third one failed.
            index.apply(
                doc("r\(i)", i % 3 == 0 ? .failed : .succeeded, sequence: 1, finishedSecondsAgo: Double(total - i) * 60)
            )
        }
        index.apply(doc("old", .rejected, sequence: 1, finishedSecondsAgo: 2 * 86400))
        index.prune(now: now)
        #expect(index.finished.count == DashboardIndex.finishedKept)
        #expect(index.finished.first?.request == "r\(total - 1)")
        #expect(index.finished.last?.request == "r\(total - DashboardIndex.finishedKept)")
        let failed = (0..<total).filter { $0 % 3 == 0 }.count
        #expect(index.lastDay(now: now) == .init(succeeded: total - failed, failedOrRejected: failed))
        let hourly = index.hourly(now: now)
        #expect(hourly.succeeded.reduce(0, +) == total - failed)
        #expect(hourly.failedOrRejected.reduce(0, +) == failed)
        // One a minute, 1 to 200 minutes ago: the last hour holds those of 1 to 59 minutes ago, the hour before 60.
        #expect(hourly.succeeded[23] + hourly.failedOrRejected[23] == 59)
        #expect(hourly.succeeded[22] + hourly.failedOrRejected[22] == 60)
        #expect(index.perMinute.count == total)  // the one from two days ago was pruned
    }

    @Test func aBurstOfLiveRequestsGivesItsMemoryBackWhenTheyFinish() {
        var index = DashboardIndex()
        for i in 0..<5000 { index.apply(doc("b\(i)", .queued, sequence: 1)) }
        let burst = index.live.capacity
        _ = index.takePendingPages()
        for i in 0..<5000 { index.apply(doc("b\(i)", .failed, sequence: 2, finishedSecondsAgo: 1)) }
        #expect(index.live.isEmpty && index.live.capacity < burst / 8)
        #expect(index.finished.count == DashboardIndex.finishedKept)
        #expect(index.lastDay(now: now).failedOrRejected == 5000)
    }

    @Test func pendingPagesAreTakenOnceAndRemovalsForgetTheRequest() {
        var index = DashboardIndex()
        index.apply(doc("a", .queued, sequence: 1))
        index.apply(doc("a", .running, sequence: 2))
        index.apply(doc("b", .failed, sequence: 1, finishedSecondsAgo: 5))
        let first = index.takePendingPages()
        #expect(Set(first.write.map(\.request)) == ["a", "b"] && first.write.count == 2)
        #expect(first.write.first { $0.request == "a" }?.state == .running)
        #expect(index.takePendingPages().write.isEmpty)
        let before = index.generation
        index.remove("b")
        #expect(index.generation != before && index.finished.isEmpty)
        #expect(index.takePendingPages().remove == ["b"])
    }

    @Test func theFeedReachesOnlyTheRegisteredSpoolsDashboard() throws {
        let spool = "/nonexistent/feed-\(UUID().uuidString)"
        DashboardFeed.published(doc("x", .queued, sequence: 1), spool: spool)  // nobody listens: dropped
        let feed = DashboardFeed.register(spool: spool)
        defer { feed.unregister() }
        DashboardFeed.published(doc("y", .queued, sequence: 1), spool: spool)
        DashboardFeed.published(doc("z", .queued, sequence: 1), spool: spool + "-other")
        let snapshot = feed.snapshot(now: now)
        #expect(snapshot.index.live.keys.sorted() == ["y"])
        #expect(snapshot.write.map(\.request) == ["y"])
    }

    @Test func aConcludedRequestChangedLaterIsNotCountedTwiceThroughTheRecords() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let spool = dir.path + "/spool"
        let records = StatusRecords(workDirectory: dir.path + "/work", spoolDirectory: spool, mode: 0o644)
        try FileManager.default.createDirectory(atPath: records.directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let feed = DashboardFeed.register(spool: spool)
        defer { feed.unregister() }
        // More finished requests than rows kept, so the first one's row is gone when its mail state changes.
        for i in 0...DashboardIndex.finishedKept {
            var d = StatusDocument(request: "m\(i)", state: .queued)
            d.requestFile = "/jobs/m\(i)/request.json"
            d.sequence = 1
            try records.write(d, name: "m\(i)")
            d.transition(to: .failed)
            d.sequence = 2
            try records.write(d, name: "m\(i)")
        }
        try records.modifyConcluded(name: "m0", ifRequestFile: "/jobs/m0/request.json") {
            $0.notifications = [.init(to: "pi@example.org", state: "sent")]
        }
        let snapshot = feed.snapshot(now: Date())
        #expect(snapshot.index.lastDay(now: Date()).failedOrRejected == DashboardIndex.finishedKept + 1)
        #expect(snapshot.write.first { $0.request == "m0" }?.notifications?.count == 1, "its page is rewritten")
    }

    @Test func theWriterRendersFromTheFeedAndRewritesOnlyWhatChanged() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let spool = dir.path + "/spool"
        let feed = DashboardFeed.register(spool: spool)
        defer { feed.unregister() }
        var writer = DashboardWriter(indexPath: dir.path + "/www/index.html", feed: feed, refreshSeconds: 5)
        let records = StatusRecords(workDirectory: dir.path + "/work", spoolDirectory: spool, mode: 0o644)
        try FileManager.default.createDirectory(atPath: records.directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        var done = StatusDocument(request: "done", state: .queued)
        done.transition(to: .succeeded)
        done.requestFile = "/jobs/1/request.json"
        done.sequence = 1
        try records.write(done, name: "done")
        try writer.seed(records: records)
        let page = dir.path + "/www/requests/done.html"
        #expect(FileManager.default.fileExists(atPath: page))

        var live = StatusDocument(request: "live", state: .queued)
        live.sequence = 1
        try records.write(live, name: "live")
        #expect(writer.due(now: Date().timeIntervalSince1970 + 2))
        try writer.write()
        let index = try String(contentsOfFile: dir.path + "/www/index.html", encoding: .utf8)
        #expect(index.contains("id=\"count-queued\">1<") && index.contains("id=\"count-succeeded-24h\">1<"))
        #expect(index.contains("data-request=\"live\"") && index.contains("data-request=\"done\""))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/www/requests/live.html"))
        // Nothing changed: no refresh within refreshSeconds; the finished page is not rewritten (same inode).
        func inode() throws -> Int? {
            try FileManager.default.attributesOfItem(atPath: page)[.systemFileNumber] as? Int
        }
        let written = try inode()
        #expect(!writer.due(now: Date().timeIntervalSince1970 + 2))
        try writer.write()
        #expect(try inode() == written)

        records.remove(name: "done", ifJobDirectory: "/jobs/1")
        try writer.write()
        #expect(!FileManager.default.fileExists(atPath: page))
    }
}
