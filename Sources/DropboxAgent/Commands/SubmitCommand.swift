import ArgumentParser
import Delivery
import FoundationEssentials
import Glibc

/// `dropbox-agent submit FILE`: drops a request safely (temporary name, then rename) and prints its name.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Drop a request into the spool safely (temporary name, then rename) and print its name.")

    @Argument(help: "The request file (JSON).")
    var file: String

    @OptionGroup var spoolOptions: SpoolOptions

    @Option(name: .long, help: "The request name in the spool (default: the file's name without .json).")
    var name: String?

    func run() throws {
        let configuration = try spoolOptions.load()
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
        do { _ = try RequestParser.parse([UInt8](data)) } catch {
            for p in error.problems { printErr("\(file): \(p)") }
            throw ExitCode(1)
        }
        var requestName = name ?? PathString.deletingExtension(PathString.lastComponent(file))
        if requestName.isEmpty { requestName = "request" }
        guard SpoolNames.isValidName(requestName) else {
            throw fail(
                "\"\(requestName)\" is not a valid request name ([A-Za-z0-9][A-Za-z0-9._-]{0,127}, not ending in .status); use --name"
            )
        }
        let spool = configuration.spool.directory!
        guard FileManager.default.fileExists(atPath: spool) else { throw fail("the spool \(spool) does not exist") }
        let target = spool + "/" + requestName + ".json"
        // Written under a dot-name the agent ignores, then linked into place: never visible half-written,
        // and never replacing a request of the same name that is still there.
        let created: Bool
        do { created = try AtomicFile.create(data, at: target, mode: 0o644) } catch {
            throw fail("cannot write into the spool: \(error)")
        }
        guard created else {
            throw fail("a request named \(requestName) is already waiting in \(spool); choose another --name")
        }
        print(requestName)
    }
}
