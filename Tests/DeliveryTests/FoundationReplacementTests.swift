import Delivery
import DropboxTestKit
import Foundation
import Synchronization
import Testing

/// The Core helpers that replaced full Foundation in the agent (issue 15), checked against Foundation itself: the
/// tests may link Foundation, the agent no longer does.
@Suite("Foundation replacements", .tags(.unit))
struct FoundationReplacementTests {
    /// Absolute and relative paths with slashes (Foundation 6.3's `NSString.deletingLastPathComponent` traps on a
    /// relative path without a slash, so those are pinned by hand below).
    static let paths = [
        "/", "/a", "/a/", "/a/b", "/a/b/", "/a//b", "/a/b.c", "/a/b.tar.gz", "/a.b/c", "/a/.profile", "a/b", "a/b/c.d",
        "/data/spool/.requests/job-1/request.json", "/ü/ß.txt",
    ]

    @Test("PathString agrees with NSString on paths with a slash", arguments: paths)
    func pathsAgree(path: String) {
        let ns = path as NSString
        #expect(PathString.lastComponent(path) == ns.lastPathComponent)
        #expect(PathString.deletingLastComponent(path) == ns.deletingLastPathComponent)
        #expect(PathString.appending(path, "q") == ns.appendingPathComponent("q"))
        #expect(PathString.pathExtension(path) == ns.pathExtension)
        if !path.contains("//") {  // NSString collapses doubled slashes here; PathString keeps them
            #expect(PathString.deletingExtension(path) == ns.deletingPathExtension)
        }
    }

    @Test("PathString on relative names and empty paths")
    func relativeNames() {
        #expect(PathString.lastComponent("a") == "a")
        #expect(PathString.deletingLastComponent("a") == "")
        #expect(PathString.deletingLastComponent("") == "")
        #expect(PathString.appending("", "b") == "b")
        #expect(PathString.appending("/", "b") == "/b")
        #expect(PathString.deletingExtension("request.json") == "request")
        #expect(PathString.deletingExtension(".profile") == ".profile")
    }

    static let texts = [
        "", " ", "  a b  ", "\t\u{00A0}x\u{3000}", "\n a \r\n", "\u{85}x\u{2028}", "x\u{2029} ", "é ", "\u{200B}y",
    ]

    @Test("trimming agrees with CharacterSet.whitespaces / whitespacesAndNewlines", arguments: texts)
    func trimming(text: String) {
        #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespaces))
        #expect(text.trimmingWhitespaceAndNewlines() == text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(
            text.trimmingScalars(where: { $0 == "x" }) == text.trimmingCharacters(in: CharacterSet(charactersIn: "x")))
    }

    @Test(
        "replacingAll agrees with replacingOccurrences (scalar matching: \\r inside \\r\\n)",
        arguments: [
            ("a\r\nb\rc", "\r", "\n"), ("a\r\nb", "\r\n", "\n"), ("aaa", "aa", "b"), ("x", "", "y"), ("::", ":", ""),
        ])
    func replacing(text: String, target: String, replacement: String) {
        #expect(
            text.replacingAll(target, with: replacement) == text.replacingOccurrences(of: target, with: replacement))
    }

    @Test("hex and fixed agree with String(format:)")
    func numbers() {
        for byte in UInt8.min...UInt8.max { #expect(TextEssentials.hex(byte) == String(format: "%02X", byte)) }
        var generator = SystemRandomNumberGenerator()
        let values =
            [0, 0.05, 0.15, 0.25, 0.5, 1.5, 2.5, 99.95, 99.949_999, -0.05, -3.25, 1e20, 123_456.789]
            + (0..<200).map { _ in Double.random(in: -1000...1000, using: &generator) }
        for value in values {
            #expect(TextEssentials.fixed(value, fractionDigits: 1) == String(format: "%.1f", value))
            #expect(TextEssentials.fixed(value, fractionDigits: 3) == String(format: "%.3f", value))
            #expect(TextEssentials.fixed(value, fractionDigits: 0, width: 3) == String(format: "%3.0f", value))
        }
    }

    @Test(
        "percent-encoding agrees with addingPercentEncoding / removingPercentEncoding",
        arguments: ["plain", "a b/c", "ü?#%;", "100%", "~-._!$&'()*+,=:@", "%", "%4", "%zz", "%C3", "%C3%BC", "a%2Fb"])
    func percent(text: String) {
        #expect(
            TextEssentials.percentEncoded(text, allowed: TextEssentials.isURLPathAllowed)
                == text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed))
        #expect(TextEssentials.percentDecoded(text) == text.removingPercentEncoding)
    }

    @Test("CivilTime texts agree with DateFormatter / ISO8601DateFormatter in UTC")
    func civilTime() {
        let mail = DateFormatter()
        mail.locale = Locale(identifier: "en_US_POSIX")
        mail.timeZone = TimeZone(identifier: "UTC")
        mail.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let basic = DateFormatter()
        basic.locale = Locale(identifier: "en_US_POSIX")
        basic.timeZone = TimeZone(identifier: "UTC")
        basic.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let iso = ISO8601DateFormatter()
        var generator = SystemRandomNumberGenerator()
        let instants: [Double] =
            [0, -1, 951_782_400, 4_107_542_399.999, 1_709_251_199.5, 100.9994, 100.9996, -0.0004, -0.0006]
            + (0..<2000).map { _ in Double.random(in: -2_000_000_000...4_000_000_000, using: &generator) }
        for seconds in instants {
            let date = Date(timeIntervalSince1970: seconds)
            let civil = CivilTime(secondsSince1970: seconds)
            #expect(civil.rfc5322 == mail.string(from: date), "\(seconds)")
            #expect(civil.iso8601Seconds == iso.string(from: date), "\(seconds)")
            #expect(civil.iso8601Basic == basic.string(from: date), "\(seconds)")
        }
    }

    @Test("ErrorText names the system's reason and the file")
    func errorText() throws {
        do {
            _ = try Data(contentsOf: URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)"))
            Issue.record("reading a missing file succeeded")
        } catch {
            let text = ErrorText.describe(error)
            #expect(text.hasPrefix(String(cString: strerror(ENOENT))))
            #expect(text.contains("/nonexistent-"))
        }
    }

    @Test("FileReader reads at offsets and to the end; StandardStream-free paths")
    func fileReader() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("f")))
        let reader = try #require(FileReader(path: dir.file("f")))
        #expect(reader.size == UInt64(bytes.count))
        #expect(reader.read(at: 10, upTo: 5) == Array(bytes[10..<15]))
        #expect(reader.read(at: 199_998, upTo: 10) == Array(bytes[199_998...]))
        #expect(reader.readToEnd(from: 70_000) == Array(bytes[70_000...]))
        #expect(FileReader(path: dir.file("missing")) == nil)
    }

    @Test("NativeThread runs the body on a named thread; ConditionLock wakes a waiter and times out")
    func threads() async throws {
        let condition = ConditionLock()
        let state = Mutex<(name: String, woken: Bool, timedOut: Bool?)>(("", false, nil))
        NativeThread.start(name: "ess-test-thread") {
            let name = Self.threadNames().contains("ess-test-thread") ? "ess-test-thread" : "unnamed"
            let timedOut = !condition.wait(seconds: 0.01, lockingAround: true)
            condition.lock()
            state.withLock {
                $0.name = name
                $0.timedOut = timedOut
            }
            while !state.withLock({ $0.woken }) { condition.wait() }
            condition.unlock()
            state.withLock { $0.name += "+done" }
        }
        try await waitUntil("the thread reports its name") { state.withLock { $0.timedOut != nil } }
        #expect(state.withLock { $0.name } == "ess-test-thread")
        #expect(state.withLock { $0.timedOut } == true)
        condition.lock()
        state.withLock { $0.woken = true }
        condition.broadcast()
        condition.unlock()
        try await waitUntil("the waiter wakes") { state.withLock { $0.name.hasSuffix("+done") } }
    }

    /// The names (`comm`) of this process's threads.
    static func threadNames() -> Set<String> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return Set(
            tasks.compactMap {
                (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .newlines)
            })
    }
}

extension ConditionLock {
    /// A timed wait that takes and releases the lock itself (for the test above).
    fileprivate func wait(seconds: Double, lockingAround: Bool) -> Bool {
        lock()
        defer { unlock() }
        return wait(seconds: seconds)
    }
}
