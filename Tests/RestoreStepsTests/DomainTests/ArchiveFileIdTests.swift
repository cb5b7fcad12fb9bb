import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct ArchiveFileIdTests {
    @Test(arguments: [
        "uid___A002_Xd248b5_Xa7a.asdm.sdm.tar", "2017.1.00370.S_uid___A001_X12d1_X23e_auxiliary.tar",
        "member.uid___A001_X12d1_X23e.hifa_calimage.tgz", "a+b-c_d.e",
    ])
    func ngasIdsAreSafe(id: String) {
        #expect(ArchiveFile.isSafeFileId(id))
    }

    @Test(arguments: [
        "", ".", "..", ".hidden", "-option", "a/b", "a\\b", "a b", "a..b", "a\nb", "ü.tar",
        String(repeating: "a", count: 256),
    ])
    func unsafeIdsAreRefused(id: String) {
        #expect(!ArchiveFile.isSafeFileId(id))
    }
}
