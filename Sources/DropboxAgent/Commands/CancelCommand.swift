import ArgumentParser
import Delivery
import FoundationEssentials
import Glibc

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
        let spoolDirectory = configuration.spool.directory!
        let status = StatusPublisher.existing(at: spoolDirectory + "/" + SpoolNames.statusFile(for: name))
        let inSpool = access(spoolDirectory + "/" + name + ".json", F_OK) == 0
        if !inSpool {
            guard let status else { throw fail("there is no request named \(name) in \(spoolDirectory)", code: 1) }
            if status.state.isTerminal {
                throw fail("request \(name) has already ended (\(status.state.rawValue)); nothing to cancel", code: 1)
            }
        }
        let path = spoolDirectory + "/" + name + ".cancel"
        do { try AtomicFile.create(Data(), at: path) } catch { throw fail("cannot write \(path): \(error)") }
        print("cancellation requested for \(name)")
    }
}
