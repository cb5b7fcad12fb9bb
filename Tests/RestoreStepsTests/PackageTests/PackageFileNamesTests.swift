import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// How a manifest's product name is found among a package's files (alma-restore.md §5.1).
@Suite(.tags(.unit)) struct PackageFileNamesTests {
    static let ous = "uid___A001_X1284_X265f"
    static let caltables = "\(ous).session_1.caltables.tgz"

    @Test func exactNameWinsOverEveryOtherForm() {
        let files = [
            Self.caltables, "member.\(Self.caltables)", "x.\(Self.caltables)", "member.\(Self.ous).s1.caltables.tgz",
        ]
        #expect(PackageFileNames.match(Self.caltables, in: files) == .found(Self.caltables))
    }

    @Test func memberPrefix() {
        #expect(
            PackageFileNames.match(Self.caltables, in: ["member.\(Self.caltables)", "unrelated.txt"])
                == .found("member.\(Self.caltables)"))
        #expect(PackageFileNames.stripMember("member.a.b") == "a.b")
        #expect(PackageFileNames.stripMember("a.member.b") == "a.member.b")
    }

    @Test func anotherPrefix() {
        #expect(
            PackageFileNames.match(Self.caltables, in: ["2017.1.00886.L.\(Self.caltables)"])
                == .found("2017.1.00886.L.\(Self.caltables)"))
        // A prefix must end with a dot: "xuid___…" is not the file.
        #expect(PackageFileNames.match(Self.caltables, in: ["x\(Self.caltables)"]) == .missing)
    }

    @Test(arguments: ["caltables", "auxcaltables"])
    func compactSessionNames(kind: String) {
        let name = "\(Self.ous).session_1.\(kind).tgz"
        #expect(PackageFileNames.compactCaltables(name) == "s1.\(kind).tgz")
        #expect(
            PackageFileNames.match(name, in: ["member.\(Self.ous).s1.\(kind).tgz"])
                == .found("member.\(Self.ous).s1.\(kind).tgz"))
        #expect(
            PackageFileNames.match(name, in: ["\(Self.ous)_s1.\(kind).tgz"]) == .found("\(Self.ous)_s1.\(kind).tgz"))
        #expect(PackageFileNames.match(name, in: ["s1.\(kind).tgz"]) == .found("s1.\(kind).tgz"))
        let twelve = "\(Self.ous).session_12.\(kind).tgz"
        #expect(
            PackageFileNames.match(twelve, in: ["member.\(Self.ous).s12.\(kind).tgz"])
                == .found("member.\(Self.ous).s12.\(kind).tgz"))
    }

    @Test func compactFormDoesNotMatchAnotherSession() {
        // s11 ends with "1.caltables.tgz" but is session 11, not session 1.
        #expect(
            PackageFileNames.match(
                Self.caltables, in: ["member.\(Self.ous).s11.caltables.tgz", "\(Self.ous).s21.caltables.tgz"])
                == .missing)
        #expect(PackageFileNames.match(Self.caltables, in: ["member.\(Self.ous).s2.caltables.tgz"]) == .missing)
        // auxcaltables is not caltables, and the other way round.
        #expect(PackageFileNames.match(Self.caltables, in: ["member.\(Self.ous).s1.auxcaltables.tgz"]) == .missing)
        #expect(
            PackageFileNames.match(
                "\(Self.ous).session_1.auxcaltables.tgz", in: ["member.\(Self.ous).s1.caltables.tgz"]) == .missing)
        #expect(PackageFileNames.compactCaltables("\(Self.ous).session_x.caltables.tgz") == nil)
        #expect(PackageFileNames.compactCaltables("\(Self.ous).hifa_calimage.auxproducts.tgz") == nil)
    }

    @Test func severalCandidatesOfOneRuleAreAnAmbiguity() {
        #expect(
            PackageFileNames.match(Self.caltables, in: ["a.\(Self.caltables)", "b.\(Self.caltables)"])
                == .ambiguous(["a.\(Self.caltables)", "b.\(Self.caltables)"]))
        #expect(
            PackageFileNames.match(
                Self.caltables, in: ["member.\(Self.ous).s1.caltables.tgz", "\(Self.ous)_s1.caltables.tgz"])
                == .ambiguous(["member.\(Self.ous).s1.caltables.tgz", "\(Self.ous)_s1.caltables.tgz"].sorted()))
        // A more specific rule with one hit wins over a later rule's several.
        #expect(
            PackageFileNames.match(
                Self.caltables, in: ["member.\(Self.caltables)", "a.s1.caltables.tgz", "b.s1.caltables.tgz"])
                == .found("member.\(Self.caltables)"))
    }

    @Test func missing() {
        #expect(PackageFileNames.match(Self.caltables, in: [String]()) == .missing)
        #expect(
            PackageFileNames.match("uid___A002_X1_X1.ms.flagversions.tgz", in: ["uid___A002_X1_X2.ms.flagversions.tgz"])
                == .missing)
    }
}

/// The identities a package's member directory carries in its path.
@Suite(.tags(.unit)) struct MemberTreeTests {
    @Test func fullTree() throws {
        let path =
            "/pkgs/p/2017.1.00886.L/science_goal.uid___A001_X1284_X265d/group.uid___A001_X1284_X265e/member.uid___A001_X1284_X265f"
        let tree = try #require(MemberTree(path: path))
        #expect(tree.mous.rawValue == "uid://A001/X1284/X265f")
        #expect(tree.gous?.rawValue == "uid://A001/X1284/X265e")
        #expect(tree.sous?.rawValue == "uid://A001/X1284/X265d")
        #expect(tree.project == "2017.1.00886.L")
        #expect(tree.calibration == path + "/calibration")
        #expect(tree.script == path + "/script")
        #expect(tree.raw == path + "/raw")
    }

    @Test func partialTrees() throws {
        let noProject = try #require(
            MemberTree(
                path: "/pkgs/download/science_goal.uid___A001_X1_X2/group.uid___A001_X1_X3/member.uid___A001_X1_X4"))
        #expect(noProject.project == nil)
        #expect(noProject.sous?.rawValue == "uid://A001/X1/X2")
        let memberOnly = try #require(MemberTree(path: "/pkgs/2017.1.00886.L/member.uid___A001_X1_X4"))
        #expect(memberOnly.gous == nil && memberOnly.sous == nil && memberOnly.project == nil)
        // A science_goal directory directly above the member (no group) is not read as the SOUS.
        let noGroup = try #require(
            MemberTree(path: "/2017.1.00886.L/science_goal.uid___A001_X1_X2/member.uid___A001_X1_X4"))
        #expect(noGroup.gous == nil && noGroup.sous == nil && noGroup.project == nil)
    }

    @Test func notAMemberDirectory() {
        #expect(MemberTree(path: "/pkgs/group.uid___A001_X1_X3") == nil)
        #expect(MemberTree(path: "/pkgs/member.notauid") == nil)
        #expect(MemberTree(path: "/pkgs/member.uid___A001_X1_X4/calibration") == nil)
        #expect(MemberTree(path: "") == nil)
    }
}
