import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// Where a request's `source.package` may point.
@Suite(.tags(.unit)) struct PackageLocationTests {
    @Test(arguments: [
        ("relative/pkg", "absolute"), ("pkg", "absolute"), ("", "1–4096"),
        ("/data/pkgs/../etc", "'..'"), ("/data/./pkgs", "'..'"), ("/data/pkg\u{1}", "control"),
        ("/data/pkg\n", "control"),
        ("/data/pkg\u{7F}", "control"), ("https://user:secret@archive.example/pkgs/", "credentials"),
        ("https://user@archive.example/pkgs/", "credentials"), ("https:///nohost", "not a valid"),
        ("ftp://archive.example/pkg", "absolute"),
    ])
    func refusedAsWritten(location: String, reason: String) throws {
        let problem = try #require(PackageLocation.problem(location), "\(location) accepted")
        #expect(problem.contains(reason), "\(problem)")
    }

    @Test func acceptedAsWritten() {
        #expect(PackageLocation.problem("/data/pkgs/2017.1.00886.L") == nil)
        #expect(PackageLocation.problem("/data/pkgs/a..b") == nil)
        #expect(PackageLocation.problem("https://archive.example/pkgs/a/") == nil)
        #expect(PackageLocation.problem("/" + String(repeating: "a", count: 5000)) != nil)
    }

    func tree() throws -> (root: String, outside: String) {
        let base = try SeedMous.temporaryDirectory().path
        let root = base + "/root"
        let outside = base + "/root2"
        for dir in [root + "/pkg/sub", outside + "/pkg"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        return (PackageLocation.realPath(root)!, PackageLocation.realPath(outside)!)
    }

    func failure(_ location: String, roots: [String]) -> RestoreError? {
        do {
            _ = try PackageLocation.confine(location, roots: roots)
            return nil
        } catch { return error }
    }

    @Test func confinesToTheRoots() throws {
        let (root, outside) = try tree()
        #expect(try PackageLocation.confine(root + "/pkg", roots: [root]) == root + "/pkg")
        #expect(
            try PackageLocation.confine(root + "/pkg/sub", roots: ["/nonexistent-root", root]) == root + "/pkg/sub")
        #expect(try PackageLocation.confine(root, roots: [root]) == root, "the root itself is allowed")
        // root2 starts with root's text but is not beneath it.
        #expect(failure(outside + "/pkg", roots: [root])?.code == .packageNotAllowed)
        #expect(failure(root + "/absent", roots: [root])?.code == .packageNotFound)
        #expect(failure(root + "/pkg", roots: [])?.code == .packageNotAllowed)
        #expect(failure("pkg", roots: [root])?.code == .packageNotAllowed)
        #expect(failure(root + "/pkg/../pkg", roots: [root])?.code == .packageNotAllowed)
    }

    @Test func symbolicLinksAreResolvedBeforeTheCheck() throws {
        let (root, outside) = try tree()
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: outside + "/pkg")
        let error = try #require(failure(root + "/escape", roots: [root]))
        #expect(error.code == .packageNotAllowed)
        #expect(error.message.contains("resolves to \(outside)/pkg"), "\(error.message)")
        // A link staying inside the root is fine, and a root given through a link is resolved too.
        try FileManager.default.createSymbolicLink(atPath: root + "/inside", withDestinationPath: root + "/pkg")
        #expect(try PackageLocation.confine(root + "/inside", roots: [root]) == root + "/pkg")
        try FileManager.default.createSymbolicLink(atPath: outside + "/rootlink", withDestinationPath: root)
        #expect(try PackageLocation.confine(root + "/pkg", roots: [outside + "/rootlink"]) == root + "/pkg")
    }

    @Test func aFileIsNotAPackage() throws {
        let (root, _) = try tree()
        _ = FileManager.default.createFile(atPath: root + "/file.tar", contents: Data("x".utf8))
        #expect(failure(root + "/file.tar", roots: [root])?.code == .packageNotFound)
    }

    @Test func urlPrefixes() throws {
        let prefixes = ["https://archive.example/pkgs"]
        #expect(
            try PackageLocation.confine(url: "https://archive.example/pkgs/a", prefixes: prefixes)
                == "https://archive.example/pkgs/a/")
        #expect(
            try PackageLocation.confine(
                url: "https://archive.example/pkgs/a/", prefixes: ["https://archive.example/pkgs/"])
                == "https://archive.example/pkgs/a/")
        for refused in [
            "https://archive.example/pkgsevil/a", "https://archive.example/other/a", "http://archive.example/pkgs/a",
            "https://archive.example/pkgs/../secret", "https://u:p@archive.example/pkgs/a",
        ] {
            #expect(throws: RestoreError.self, "\(refused)") {
                try PackageLocation.confine(url: refused, prefixes: prefixes)
            }
        }
        do {
            _ = try PackageLocation.confine(url: "https://archive.example/pkgs/a", prefixes: [])
            Issue.record("no prefixes: accepted")
        } catch {
            #expect(error.code == .packageNotAllowed)
            #expect(error.message.contains("sources.packageURLs is empty"))
        }
    }
}
