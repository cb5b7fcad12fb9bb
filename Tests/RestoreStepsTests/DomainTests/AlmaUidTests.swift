import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct AlmaUidTests {
    @Test func convertsBetweenUidAndAsdmDiskName() throws {
        let uid = try #require(AlmaUid("uid://A002/Xc7111c/X3979"))
        #expect(AsdmDiskName(uid).rawValue == "uid___A002_Xc7111c_X3979")
        #expect(AsdmDiskName(uid).msName == "uid___A002_Xc7111c_X3979.ms")
        #expect(AsdmDiskName("uid___A002_Xc7111c_X3979")?.uid == uid)
        #expect(AlmaUid(lenient: "uid___A002_Xc72427_X2dfe")?.rawValue == "uid://A002/Xc72427/X2dfe")
        #expect(uid.sanitized == "uid___A002_Xc7111c_X3979")
    }

    @Test(arguments: [
        "", "uid://", "uid://A002/Xc7111c", "uid://A002/Xc7111c/X3979/X1", "uid://A002/../X3979",
        "uid://A002/Xc7111c/..",
        "uid://A002/Xc7111c/X39 79", "uid://A002/Xc7111c/X3979\n", "uid://A002//X3979", "UID://A002/Xc7111c/X3979",
        "uid://A002/Xc7111c/Xzz", "uid://A002/Xc7111c/3979", "/etc/passwd", "uid://A002/Xc7111c/X3979.asdm.sdm",
        "uid://A0_2/X1/X2", "uid://A002/X1/X2;rm", "uid://A002/X\u{0661}/X2",
    ])
    func rejectsAnythingThatIsNotAUid(_ text: String) {
        #expect(AlmaUid(text) == nil)
        #expect(AlmaUid(lenient: text) == nil)
    }

    @Test(arguments: [
        "uid___A002_Xc7111c_X3979.asdm.sdm", "uid___A002_Xc7111c", "uid___A002_Xc7111c_X3979_X1", "uid___A002_.._X1",
        "uid___A002_Xc7111c_X3979 ", "../uid___A002_Xc7111c_X3979", "uid___A002/Xc7111c_X3979",
    ])
    func rejectsBadDiskNames(_ text: String) {
        #expect(AsdmDiskName(text) == nil)
    }

    @Test func decodingRejectsInvalidUids() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([AlmaUid].self, from: Data(#"["uid://A002/../X1"]"#.utf8))
        }
        #expect(throws: Never.self) {
            try JSONDecoder().decode([AlmaUid].self, from: Data(#"["uid://A002/X1/X2"]"#.utf8))
        }
    }
}

@Suite(.tags(.unit)) struct UTCTimeTests {
    @Test func parsesTheSpellingsALMAUses() throws {
        let z = try #require(UTCTime(parsing: "2017-12-03T05:00:00Z"))
        #expect(UTCTime(parsing: "2017-12-03 05:00:00.000") == z)  // OUSStatus EndTime
        #expect(UTCTime(parsing: "2017-12-03T05:00:00") == z)
        #expect(UTCTime(parsing: "2017-12-03T06:00:00+01:00") == z)
        #expect(UTCTime(parsing: "2017-12-03T05:00:00.5Z")?.millisecondsSince1970 == z.millisecondsSince1970 + 500)
        #expect(z.description == "2017-12-03T05:00:00Z")
        #expect(UTCTime(parsing: "2017-12-03T05:00:00.250Z")?.description == "2017-12-03T05:00:00.250Z")
        #expect(z.date == ISO8601DateFormatter().date(from: "2017-12-03T05:00:00Z"))
        for bad in ["2017-02-30T00:00:00Z", "2017-12-03", "yesterday", "2017-12-03T25:00:00Z", "2017-12-03T05:00:00ZZ"]
        {
            #expect(UTCTime(parsing: bad) == nil, "\(bad)")
        }
    }

    /// The one RFC 3339 helper: the status file (fixed width), the PPR and file names (compact) all use it.
    @Test func writesTheFixedWidthAndCompactForms() throws {
        let t = try #require(UTCTime(parsing: "2024-03-01T10:00:07.25Z"))
        #expect(t.fixedWidthDescription == "2024-03-01T10:00:07.250Z")
        #expect(
            try #require(UTCTime(parsing: "2024-03-01T10:00:07Z")).fixedWidthDescription == "2024-03-01T10:00:07.000Z")
        #expect(t.compactDescription == "20240301T100007")
        #expect(UTCTime(parsing: t.fixedWidthDescription) == t)
        #expect(UTCTime(Date(timeIntervalSince1970: 1_709_287_207.2509)) == t)  // truncated to milliseconds
        #expect(UTCTime(millisecondsSince1970: -1).fixedWidthDescription == "1969-12-31T23:59:59.999Z")
    }
}

@Suite(.tags(.unit)) struct RelativePathTests {
    @Test func buildsTheJAOLayoutFromSafeCharacters() throws {
        let time = try #require(UTCTime(parsing: "2018-01-22T00:53:28.968Z")).date
        let path = RelativePath(
            project: "2017.1.00886.L", sous: AlmaUid("uid://A001/X1284/X265d")!,
            gous: AlmaUid("uid://A001/X1284/X265e")!,
            mous: AlmaUid("uid://A001/X1284/X265f")!, time: time)
        #expect(
            path.rawValue
                == "2017.1.00886.L_2018_01_22T00_53_28.968/SOUS_uid___A001_X1284_X265d/GOUS_uid___A001_X1284_X265e/MOUS_uid___A001_X1284_X265f"
        )
        let odd = RelativePath(
            project: "../x y/z", sous: AlmaUid("uid://A001/X1/X2")!, gous: AlmaUid("uid://A001/X1/X3")!,
            mous: AlmaUid("uid://A001/X1/X4")!, time: time)
        #expect(odd.rawValue.hasPrefix("_._x_y_z_2018_01_22T00_53_28.968/SOUS_"))
        #expect(RelativePath(odd.rawValue) != nil)
        for bad in ["/abs/path", "a/../b", "a//b", "", ".hidden/x", "a/b c"] {
            #expect(RelativePath(bad) == nil, "\(bad)")
        }
    }
}
