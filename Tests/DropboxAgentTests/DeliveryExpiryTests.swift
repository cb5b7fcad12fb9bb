import Delivery
import Foundation
import Logging
import RestoreSteps
import DropboxTestKit
import Testing

@testable import DropboxAgent

@Suite("Delivery expiry", .tags(.unit))
struct DeliveryExpiryTests {
    private func makeArea() throws -> String {
        let root = NSTemporaryDirectory() + "/delivery-expiry-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/downloads", withIntermediateDirectories: true)
        return root
    }

    private func records(_ root: String) -> StatusRecords {
        StatusRecords(workDirectory: root + "/work", spoolDirectory: root, mode: 0o644)
    }

    private func statusDocument(jobId: String, root: String) -> StatusDocument {
        var doc = StatusDocument(request: "r1", state: .succeeded)
        doc.requestFile = root + "/work/finished/" + jobId + "/request.json"
        doc.result = .init(
            deliveryPath: root + "/downloads/x", url: "https://h/d/x/", measurementSets: ["a.ms"], sizeBytes: 10,
            expiresAt: "2026-01-01T00:00:00Z")
        return doc
    }

    @Test("an expired delivery is removed, its status says so and keeps what was delivered; a live one stays")
    func expiresOnlyExpired() throws {
        let root = try makeArea()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let expiry = DeliveryExpiry(
            directory: root + "/deliveries", downloadDirectory: root + "/downloads",
            records: records(root), logger: Logger(label: "t"))
        let old = DeliveryName.random()
        let live = DeliveryName.random()
        for name in [old, live] {
            try FileManager.default.createDirectory(
                atPath: root + "/downloads/" + name + "/a.ms", withIntermediateDirectories: true)
        }
        let statusPath = root + "/r1.status.json"
        try FileManager.default.createDirectory(atPath: records(root).directory, withIntermediateDirectories: true)
        try records(root).write(statusDocument(jobId: "job-old", root: root), name: "r1")
        try expiry.register(
            .init(
                jobId: "job-old", name: old, path: root + "/downloads/" + old, expiresAt: 1000, statusPath: statusPath))
        try expiry.register(
            .init(
                jobId: "job-live", name: live, path: root + "/downloads/" + live, expiresAt: 3000,
                statusPath: root + "/r2.status.json"))

        let removed = expiry.sweep(now: 2000)
        #expect(removed.map(\.jobId) == ["job-old"])
        #expect(!FileManager.default.fileExists(atPath: root + "/downloads/" + old))
        #expect(FileManager.default.fileExists(atPath: root + "/downloads/" + live + "/a.ms"))
        #expect(expiry.entries().map(\.jobId) == ["job-live"])
        let doc = try #require(StatusPublisher.existing(at: statusPath))
        #expect(doc.state == .succeeded)
        #expect(doc.result?.expiredAt != nil)
        #expect(doc.result?.measurementSets == ["a.ms"])
        #expect(doc.warnings?.contains { $0.contains("expired") } == true)
        #expect(expiry.sweep(now: 2000).isEmpty)
    }

    @Test("a delivery shared by a linked request: removed once, counted once, both statuses say it expired")
    func linkedRequestExpiresWithItsOriginal() throws {
        let root = try makeArea()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let expiry = DeliveryExpiry(
            directory: root + "/deliveries", downloadDirectory: root + "/downloads",
            records: records(root), logger: Logger(label: "t"))
        let name = DeliveryName.random()
        try FileManager.default.createDirectory(
            atPath: root + "/downloads/" + name + "/a.ms", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: records(root).directory, withIntermediateDirectories: true)
        // Job ids chosen so that the linked request's record comes first in the sweep: it removes the directory,
        // the original's finds it gone and still marks its status.
        for (jobId, request) in [("job-b-original", "orig"), ("job-a-linked", "linked")] {
            var doc = statusDocument(jobId: jobId, root: root)
            doc.request = request
            doc.result?.deliveryPath = root + "/downloads/" + name
            try records(root).write(doc, name: request)
            try expiry.register(
                .init(
                    jobId: jobId, name: name, path: root + "/downloads/" + name, expiresAt: 1000,
                    statusPath: root + "/" + request + ".status.json"))
        }
        let removed = expiry.sweep(now: 2000)
        #expect(removed.count == 1, "one directory removed, one count for the metric")
        #expect(!FileManager.default.fileExists(atPath: root + "/downloads/" + name))
        #expect(expiry.entries().isEmpty)
        for request in ["orig", "linked"] {
            let doc = try #require(StatusPublisher.existing(at: root + "/" + request + ".status.json"))
            #expect(doc.state == .succeeded && doc.result?.expiredAt != nil, "\(request)")
            #expect(doc.result?.measurementSets == ["a.ms"], "\(request) still says what was delivered")
            #expect(records(root).read(request)?.result?.expiredAt != nil, "\(request): the record too")
        }
    }

    @Test("a record naming anything but a delivery of this area is dropped, nothing removed")
    func refusesForeignPaths() throws {
        let root = try makeArea()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let expiry = DeliveryExpiry(
            directory: root + "/deliveries", downloadDirectory: root + "/downloads",
            records: records(root), logger: Logger(label: "t"))
        try FileManager.default.createDirectory(atPath: root + "/precious", withIntermediateDirectories: true)
        try expiry.register(
            .init(
                jobId: "j1", name: "../precious", path: root + "/downloads/../precious", expiresAt: 1,
                statusPath: root + "/s"))
        let name = DeliveryName.random()
        try expiry.register(
            .init(jobId: "j2", name: name, path: root + "/precious", expiresAt: 1, statusPath: root + "/s"))
        #expect(expiry.sweep(now: 10).isEmpty)
        #expect(FileManager.default.fileExists(atPath: root + "/precious"))
        #expect(expiry.entries().isEmpty)
    }

    private func load(_ json: String) throws -> AgentConfiguration {
        let path = NSTemporaryDirectory() + "delivery-config-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AgentConfiguration.load(path: path)
    }

    @Test(
        "configuration: modes and retention are checked",
        arguments: [
            (#"{"delivery": {"directoryMode": "0644"}}"#, "$.delivery.directoryMode"),
            (#"{"delivery": {"fileMode": "0755"}}"#, "$.delivery.fileMode"),
            (#"{"delivery": {"fileMode": "4644"}}"#, "$.delivery.fileMode"),
            (#"{"delivery": {"retentionDays": -1}}"#, "$.delivery.retentionDays"),
        ])
    func refused(json: String, path: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try load(json) }
        #expect(error.path.hasSuffix(path), "\(error)")
    }

    @Test("configuration defaults")
    func defaults() throws {
        let c = try load(#"{"delivery": {"retentionDays": 0.5}}"#)
        #expect(c.delivery.retentionSeconds == 43200)
        #expect(c.delivery.directoryMode == "0755" && c.delivery.fileMode == "0644")
        #expect(try load("{}").delivery.retentionSeconds == 14 * 86400)
        #expect(try load(#"{"delivery": {"retentionDays": 0}}"#).delivery.retentionSeconds == nil)
        #expect(DeliveryExpiry.interval(retentionSeconds: 14 * 86400) == 600)
        #expect(DeliveryExpiry.interval(retentionSeconds: 40) == 2)
    }
}
