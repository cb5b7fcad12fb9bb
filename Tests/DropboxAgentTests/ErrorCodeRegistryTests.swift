import Delivery
import Foundation
import RestoreSteps
import Testing
import DropboxTestKit
@testable import DropboxAgent

/// The error codes are one list (``ErrorCodeRegistry``); the README's table and the sources must agree with it.
@Suite(.tags(.unit)) struct ErrorCodeRegistryTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The codes in the README's error table (between its two markers).
    static func readmeCodes() throws -> [String] {
        let text = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- error-codes: begin"))
        let end = try #require(text.range(of: "<!-- error-codes: end", range: begin.upperBound..<text.endIndex))
        return text[begin.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line in
            guard line.hasPrefix("| `") else { return nil }
            return line.dropFirst(3).split(separator: "`", maxSplits: 1).first.map(String.init)
        }
    }

    /// Every Swift file under `Sources/`.
    static func sources() throws -> [(path: String, text: String)] {
        let root = repository.appendingPathComponent("Sources").path
        let paths = try #require(FileManager.default.subpathsOfDirectory(atPath: root) as [String]?)
        return try paths.filter { $0.hasSuffix(".swift") }.sorted().map { path in
            (path, try String(contentsOfFile: root + "/" + path, encoding: .utf8))
        }
    }

    @Test func readmeTableIsTheRegistry() throws {
        let table = try Self.readmeCodes()
        #expect(table.count == Set(table).count, "a code appears twice in the README's table")
        let registry = ErrorCodeRegistry.all
        #expect(Set(table).subtracting(registry).sorted() == [], "in the README's table but not in ErrorCodeRegistry")
        #expect(registry.subtracting(table).sorted() == [], "in ErrorCodeRegistry but not in the README's table")
    }

    @Test func registryListsEachCodeOnce() {
        let restore = ErrorCodeRegistry.restore.map(\.rawValue) + ErrorCodeRegistry.agent.map(\.rawValue)
        #expect(restore.count == Set(restore).count)
        let delivery = ErrorCodeRegistry.delivery.map(\.rawValue)
        #expect(delivery.count == Set(delivery).count)
        #expect(ErrorCodeRegistry.all.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isLetter) })
    }

    /// A code declared anywhere in the sources (`static let x: Self = "x"` on `RestoreError.Code`,
    /// `Code(rawValue: "x")` on `DeliveryError.Code`) must be registered, and no error is made from a literal code.
    @Test func everyDeclaredCodeIsRegistered() throws {
        let registry = ErrorCodeRegistry.all
        let declaration = /static let \w+(?:: Self = |(?:: Code)? = Code\(rawValue: )"(\w+)"/
        var declared: [String: String] = [:]
        for (path, text) in try Self.sources()
        where text.contains("extension RestoreError.Code") || path.hasSuffix("DeliveryError.swift") {
            for match in text.matches(of: declaration) { declared[String(match.1)] = path }
        }
        #expect(declared.count >= 90, "the declarations were not found: \(declared.count)")
        let missing = declared.filter { !registry.contains($0.key) }.map { "\($0.key) (\($0.value))" }.sorted()
        #expect(missing == [], "declared but not in ErrorCodeRegistry (nor in README.md)")
        let literal = /RestoreError\(\s*"|RestoreError\.Code\(rawValue:\s*"|RestoreError\(\s*\.init\(rawValue:\s*"/
        let literals = try Self.sources().filter { $0.text.contains(literal) }.map(\.path)
        #expect(literals == [], "an error made from a literal code: name the code in the registry instead")
    }
}
