import Delivery
import Foundation
import Testing
import DropboxTestKit

/// A store directory with one random file, a fault store over it, and fast retry options.
private struct FaultFixture {
    let dir: TemporaryDirectory
    let store: String
    let output: String
    let service: TestService
    let data: Data
    let expected: ExpectedFile

    init(size: Int = 1 << 20) throws {
        let dir = try TemporaryDirectory("http-store")
        self.dir = dir
        store = try dir.sub("store")
        output = try dir.sub("out")
        data = try writeRandomFile(store + "/uid___A001_X1_X2.caltables.tgz", size: size)
        var checksum = Checksum(.crc32)
        checksum.update(data)
        // NGAS may store crc32 signed: use the signed form to prove `& 0xffffffff` comparison.
        let signed = Int32(bitPattern: checksum.value)
        expected = ExpectedFile(
            fileId: "uid___A001_X1_X2.caltables.tgz", size: Int64(size), checksum: String(signed),
            checksumVariant: .crc32)
        do {
            service = try TestService.faultStore(store: store, runDirectory: try dir.sub("run"))
        } catch {
            dir.remove()
            throw error
        }
    }

    func store(fault: String?, attempts: Int = 4, lowSpeedTime: Duration = .seconds(2)) -> HTTPArchiveStore {
        var options = HTTPStoreOptions()
        options.maxAttempts = attempts
        options.initialBackoff = .milliseconds(50)
        options.maxBackoff = .milliseconds(200)
        options.lowSpeedTime = lowSpeedTime
        options.connectTimeout = .seconds(5)
        let base = fault.map { "\(service.baseURL)/\($0)" } ?? service.baseURL
        return HTTPArchiveStore(baseURL: base, options: options)
    }

    var destination: String { output + "/" + expected.fileId }

    func fetched() throws -> Data { try Data(contentsOf: URL(fileURLWithPath: destination)) }

    func tearDown() {
        service.stop()
        dir.remove()
    }
}

@Suite("HTTPArchiveStore against fault_store.py", .serialized, .tags(.integration), .selected(.integration))
struct HTTPArchiveStoreFaultTests {
    @Test(
        "transient faults end in a verified file",
        arguments: [
            "503-then-ok", "429-then-ok", "500-then-ok", "truncate-then-ok", "reset-then-ok", "stall-then-ok",
            "empty-then-ok", "slow", "corrupt-byte-then-ok", "redirect-303", "long-length", "ignore-range",
        ])
    func transientFaultEndsVerified(fault: String) async throws {
        let fixture = try FaultFixture(size: fault == "slow" ? 256 * 1024 : 1 << 20)
        defer { fixture.tearDown() }
        let result = try await fixture.store(fault: fault).retrieve(fixture.expected, to: fixture.destination) { _, _ in
        }
        #expect(try fixture.fetched() == fixture.data)
        #expect(result.size == Int64(fixture.data.count))
        #expect(Checksum.parse(result.checksum ?? "") == Checksum.parse(fixture.expected.checksum!))
        #expect(result.serverFileName == fixture.expected.fileId)
        #expect(!FileManager.default.fileExists(atPath: fixture.destination + ".part"))
    }

    @Test("a truncated transfer resumes and fetches only the rest")
    func resumeFetchesOnlyTheRest() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let result = try await fixture.store(fault: "truncate-then-ok").retrieve(
            fixture.expected, to: fixture.destination
        ) { _, _ in }
        #expect(try fixture.fetched() == fixture.data)
        let counters = try fixture.service.counters(for: fixture.expected.fileId)
        #expect(counters.requests == 2)
        #expect(counters.bytes == fixture.data.count, "half, then the other half via Range")
        #expect(result.bytesTransferred == Int64(fixture.data.count))
    }

    @Test("a server that ignores Range is noticed: restart from zero, still verified")
    func ignoredRangeRestartsFromZero() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        _ = try await fixture.store(fault: "ignore-range").retrieve(fixture.expected, to: fixture.destination) { _, _ in
        }
        #expect(try fixture.fetched() == fixture.data)
        let counters = try fixture.service.counters(for: fixture.expected.fileId)
        #expect(counters.bytes == fixture.data.count + fixture.data.count / 2)
    }

    @Test("an existing .part is resumed; a 416 for it restarts from zero")
    func existingPartAnd416() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        // A correct prefix resumes.
        try fixture.data.prefix(300_000).write(to: URL(fileURLWithPath: fixture.destination + ".part"))
        _ = try await fixture.store(fault: nil).retrieve(fixture.expected, to: fixture.destination) { _, _ in }
        #expect(try fixture.fetched() == fixture.data)
        #expect(try fixture.service.counters(for: fixture.expected.fileId).bytes == fixture.data.count - 300_000)
        // A junk .part with a server answering 416 to every Range: discarded, fetched from zero.
        try FileManager.default.removeItem(atPath: fixture.destination)
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: fixture.destination + ".part"))
        _ = try await fixture.store(fault: "416").retrieve(fixture.expected, to: fixture.destination) { _, _ in }
        #expect(try fixture.fetched() == fixture.data)
    }

    @Test("503 honours Retry-After")
    func retryAfterIsHonoured() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let start = ContinuousClock.now
        _ = try await fixture.store(fault: "503-then-ok").retrieve(fixture.expected, to: fixture.destination) { _, _ in
        }
        #expect(ContinuousClock.now - start >= .milliseconds(950))
    }

    @Test("a corrupted byte every time: checksum failure after one refetch from zero")
    func corruptByteAlwaysFails() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: "corrupt-byte").retrieve(fixture.expected, to: fixture.destination) { _, _ in
            }
        }
        #expect(error.code == .checksumMismatch)
        #expect(try fixture.service.counters(for: fixture.expected.fileId).requests == 2)
        #expect(!FileManager.default.fileExists(atPath: fixture.destination))
        #expect(!FileManager.default.fileExists(atPath: fixture.destination + ".part"))
    }

    @Test("a too-short Content-Length: size failure, never a silently short file")
    func shortLengthFails() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: "short-length").retrieve(fixture.expected, to: fixture.destination) { _, _ in
            }
        }
        #expect(error.code == .sizeMismatch)
        #expect(try fixture.service.counters(for: fixture.expected.fileId).requests == 2)
        #expect(!FileManager.default.fileExists(atPath: fixture.destination))
    }

    @Test("without an expected size a short Content-Length is still caught by the checksum")
    func shortLengthCaughtByChecksum() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        var expected = fixture.expected
        expected.size = nil
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: "short-length").retrieve(expected, to: fixture.destination) { _, _ in }
        }
        #expect(error.code == .checksumMismatch)
    }

    @Test("persistent truncation gives up after maxAttempts with the curl code")
    func persistentTruncationFails() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: "truncate", attempts: 3).retrieve(fixture.expected, to: fixture.destination)
            { _, _ in }
        }
        #expect(error.code == .transferFailed)
        #expect(error.curlCode == 18)
        #expect(error.message.contains("3 attempts"))
        #expect(try fixture.service.counters(for: fixture.expected.fileId).requests == 3)
    }

    @Test("a stalled server hits the low-speed timeout (curl 28)")
    func stallTimesOut() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: "stall", attempts: 2, lowSpeedTime: .seconds(1))
                .retrieve(fixture.expected, to: fixture.destination) { _, _ in }
        }
        #expect(error.code == .transferFailed)
        #expect(error.curlCode == 28)
    }

    @Test(
        "NGAS FAILURE documents become errors with the NGAS message", arguments: ["ngas-failure", "ngas-failure-200"])
    func ngasFailure(fault: String) async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: fault).retrieve(fixture.expected, to: fixture.destination) { _, _ in }
        }
        #expect(error.code == (fault == "ngas-failure" ? .fileNotFound : .archiveFailure))
        #expect(error.message.contains(fault == "ngas-failure" ? "NGAMS_ER_UNAVAIL_FILE" : "NGAMS_ER_DAPI_BAD_FILE"))
        #expect(!FileManager.default.fileExists(atPath: fixture.destination))
        #expect(!FileManager.default.fileExists(atPath: fixture.destination + ".part"))
    }

    @Test("cancelling the task aborts a stalled transfer promptly")
    func cancellation() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let store = fixture.store(fault: "stall", lowSpeedTime: .seconds(60))
        let expected = fixture.expected
        let destination = fixture.destination
        let task = Task { try await store.retrieve(expected, to: destination) { _, _ in } }
        poll(for: 10) {
            (FileManager.default.fileExists(atPath: destination + ".part"))
                && (try? fixture.service.counters(for: expected.fileId).bytes) ?? 0 > 0
        }
        let start = ContinuousClock.now
        task.cancel()
        let result = await task.result
        #expect(ContinuousClock.now - start < .seconds(5))
        guard case .failure(let error as DeliveryError) = result else {
            Issue.record("expected a DeliveryError, got \(result)")
            return
        }
        #expect(error.code == .cancelled)
    }

    @Test("progress reports monotonically up to the total")
    func progressIsReported() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let seen = ProgressLog()
        _ = try await fixture.store(fault: "slow").retrieve(fixture.expected, to: fixture.destination) { done, total in
            seen.add(done, total)
        }
        let values = seen.values
        #expect(values.count > 2)
        #expect(values.last?.0 == Int64(fixture.data.count))
        #expect(values.allSatisfy { $0.1 == Int64(fixture.data.count) })
    }

    @Test("NGAS STATUS gives size and checksum; unverified expectations are completed from it")
    func statusCompletesExpectations() async throws {
        let fixture = try FaultFixture()
        defer { fixture.tearDown() }
        let status = try await fixture.store(fault: nil).status(of: fixture.expected.fileId)
        #expect(status.size == fixture.expected.size)
        #expect(status.checksumVariant == .crc32)
        #expect(Checksum.parse(status.checksum ?? "") == Checksum.parse(fixture.expected.checksum!))
        let missing = try await #require(throws: DeliveryError.self) {
            try await fixture.store(fault: nil).status(of: "not-there.tgz")
        }
        #expect(missing.code == .fileNotFound)

        // With no expectations at all, a corrupted byte would go unnoticed; STATUS makes it a checksum failure.
        var store = fixture.store(fault: "corrupt-byte")
        var options = store.options
        options.completeExpectationsFromStatus = true
        store = HTTPArchiveStore(baseURL: store.baseURL, options: options)
        let bare = ExpectedFile(fileId: fixture.expected.fileId)
        let error = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(bare, to: fixture.destination) { _, _ in }
        }
        #expect(error.code == .checksumMismatch)
        let clean = HTTPArchiveStore(baseURL: fixture.service.baseURL, options: options)
        let result = try await clean.retrieve(bare, to: fixture.destination) { _, _ in }
        #expect(result.size == Int64(fixture.data.count))
        #expect(try fixture.fetched() == fixture.data)
    }

    @Test("invalid file ids are refused before any request")
    func invalidFileIds() async throws {
        let store = HTTPArchiveStore(baseURL: "http://127.0.0.1:9")
        for id in ["", "../etc/passwd", "a/b", "..", "x\ny"] {
            let error = try await #require(throws: DeliveryError.self) {
                try await store.retrieve(ExpectedFile(fileId: id), to: "/tmp/never") { _, _ in }
            }
            #expect(error.code == .invalidFileId)
        }
    }
}

/// Collects progress callbacks from any thread.
final class ProgressLog: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var entries: [(Int64, Int64?)] = []
    func add(_ done: Int64, _ total: Int64?) { lock.withLock { entries.append((done, total)) } }
    var values: [(Int64, Int64?)] { lock.withLock { entries } }
}

@Suite("HTTPArchiveStore against nginx", .serialized, .tags(.integration), .selected(.integration))
struct HTTPArchiveStoreNginxTests {
    @Test("a few MB are fetched and verified; 404 and bad ids give NGAS errors")
    func nginxFetch() async throws {
        let dir = try TemporaryDirectory("nginx-store")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        let data = try writeRandomFile(storeDir + "/uid___A002_X1_X1.asdm.sdm.tar.gz", size: 5_000_000 + 17)
        let nginx = try TestService.nginxStore(store: storeDir, runDirectory: try dir.sub("run"))
        defer { nginx.stop() }
        var crc = Checksum(.crc32c)
        crc.update(data)
        let expected = ExpectedFile(
            fileId: "uid___A002_X1_X1.asdm.sdm.tar.gz", size: Int64(data.count), checksum: crc.decimalString,
            checksumVariant: .crc32c)
        let store = HTTPArchiveStore(baseURL: nginx.baseURL + "/")
        let result = try await store.retrieve(expected, to: out + "/asdm.tgz") { _, _ in }
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/asdm.tgz")) == data)
        #expect(result.serverFileName == expected.fileId)
        #expect(result.bytesTransferred == Int64(data.count))

        let missing = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(ExpectedFile(fileId: "nope.tgz"), to: out + "/nope") { _, _ in }
        }
        #expect(missing.code == .fileNotFound)
        #expect(missing.httpStatus == 404)
        #expect(missing.message.contains("NGAMS_ER_UNAVAIL_FILE"))

        let bad = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(ExpectedFile(fileId: "bad id with spaces"), to: out + "/bad") { _, _ in }
        }
        #expect(bad.code == .archiveFailure)
        #expect(bad.httpStatus == 400)
        #expect(bad.message.contains("NGAMS_ER_RETRIEVE_CMD"))
    }
}
