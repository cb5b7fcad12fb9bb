import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import DropboxAgent

@Suite("archive.limits configuration", .tags(.unit))
struct ArchiveLimitsConfigTests {
    private func load(_ json: String) throws -> AgentConfiguration {
        let path = NSTemporaryDirectory() + "limits-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AgentConfiguration.load(path: path)
    }

    @Test("defaults match ArchiveLimits' defaults")
    func defaults() throws {
        #expect(try load("{}").archive.limits.archiveLimits == ArchiveLimits())
    }

    @Test("every key is read")
    func keys() throws {
        let c = try load(
            #"{"archive": {"limits": {"maxEntries": 10, "maxTotalBytes": 1000, "maxFileBytes": 500, "maxExpansionRatio": 50, "ratioAllowanceBytes": 0}}}"#
        )
        #expect(
            c.archive.limits.archiveLimits
                == ArchiveLimits(
                    maxEntries: 10, maxTotalBytes: 1000, maxEntryBytes: 500, maxExpansionRatio: 50,
                    ratioAllowanceBytes: 0))
    }

    @Test(
        "typos and nonsense are refused with the key's path",
        arguments: [
            (#"{"archive": {"limits": {"maxRatio": 5}}}"#, "$.archive.limits.maxRatio"),
            (#"{"archive": {"limits": {"maxEntries": 0}}}"#, "$.archive.limits.maxEntries"),
            (#"{"archive": {"limits": {"maxExpansionRatio": 0.5}}}"#, "$.archive.limits.maxExpansionRatio"),
            (#"{"archive": {"limits": {"maxTotalBytes": -1}}}"#, "$.archive.limits.maxTotalBytes"),
        ])
    func refused(json: String, path: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try load(json) }
        #expect(error.path.hasSuffix(path), "\(error)")
    }

    @Test("expected sizes tighten the bounds, never loosen them")
    func expecting() {
        let limits = ArchiveLimits(maxTotalBytes: 1 << 40, maxEntryBytes: 1 << 40)
        let tightened = limits.expecting(1 << 30)
        #expect(tightened.maxTotalBytes == (2 << 30) + (64 << 20))
        #expect(ArchiveLimits(maxTotalBytes: 1000).expecting(1 << 30).maxTotalBytes == 1000)
        #expect(limits.expecting(nil) == limits)
    }
}

@Suite("agent.sweepIntervalSeconds", .tags(.unit))
struct SweepIntervalConfigTests {
    private func load(_ json: String) throws -> AgentConfiguration {
        let path = NSTemporaryDirectory() + "sweep-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AgentConfiguration.load(path: path)
    }

    @Test("10 minutes unless configured")
    func defaultAndValue() throws {
        #expect(try load("{}").agent.sweepIntervalSeconds == 600)
        #expect(try load(#"{"agent": {"sweepIntervalSeconds": 60}}"#).agent.sweepIntervalSeconds == 60)
        #expect(try load(#"{"agent": {"sweepIntervalSeconds": 10}}"#).agent.sweepIntervalSeconds == 10)
        #expect(try load(#"{"agent": {"sweepIntervalSeconds": 86400}}"#).agent.sweepIntervalSeconds == 86400)
    }

    @Test(
        "outside 10 s … a day, or not a number: refused with the key's path",
        arguments: [
            #"{"agent": {"sweepIntervalSeconds": 0}}"#, #"{"agent": {"sweepIntervalSeconds": 9.5}}"#,
            #"{"agent": {"sweepIntervalSeconds": -600}}"#, #"{"agent": {"sweepIntervalSeconds": 86401}}"#,
            #"{"agent": {"sweepIntervalSeconds": "600"}}"#,
        ])
    func refused(json: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try load(json) }
        #expect(error.path.hasSuffix("$.agent.sweepIntervalSeconds"), "\(error)")
    }

    @Test(
        "agent values that would leave requests stuck, failed at once or run twice are refused",
        arguments: [
            ("maxConcurrentRestores", "0"), ("maxConcurrentPerDropper", "-1"), ("leaseSeconds", "0"),
            ("leaseSeconds", "0.5"),
            ("leaseSeconds", "-300"), ("maxAttempts", "0"), ("resubmitWindowSeconds", "-1"),
            ("shutdownGraceSeconds", "-5"),
            ("retentionDays", "-7"),
        ])
    func agentValuesRefused(key: String, value: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try load(#"{"agent": {"\#(key)": \#(value)}}"#) }
        #expect(error.path.hasSuffix("$.agent.\(key)"), "\(error)")
    }

    @Test("their smallest sensible values load")
    func agentValuesAccepted() throws {
        let c = try load(
            #"{"agent": {"maxConcurrentRestores": 1, "maxConcurrentPerDropper": 0, "leaseSeconds": 1, "maxAttempts": 1, "resubmitWindowSeconds": 0, "shutdownGraceSeconds": 0, "retentionDays": 0}}"#
        )
        #expect(c.agent.leaseSeconds == 1 && c.agent.maxAttempts == 1 && c.agent.maxConcurrentRestores == 1)
    }
}
