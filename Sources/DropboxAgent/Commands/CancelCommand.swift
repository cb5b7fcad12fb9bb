import ArgumentParser
import Delivery
import Foundation

/// `dropbox-agent cancel NAME`: the same as dropping `NAME.cancel` into the spool.
struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Ask for cancellation of a request (same as dropping NAME.cancel).")

    @Argument(help: "The request name.")
    var name: String

    @OptionGroup var spoolOptions: SpoolOptions

    func run() throws {
        let configuration = try spoolOptions.load()
        guard SpoolNames.isValidName(name) else { throw fail("\"\(name)\" is not a valid request name", code: 2) }
        let path = configuration.spool.directory! + "/" + name + ".cancel"
        do { try AtomicFile.create(Data(), at: path) } catch { throw fail("cannot write \(path): \(error)") }
        print("cancellation requested for \(name)")
    }
}
