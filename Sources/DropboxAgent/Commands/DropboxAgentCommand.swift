import ArgumentParser
import Delivery
import FoundationEssentials
import Glibc

/// `dropbox-agent`: the command line of the contract.
@main
struct DropboxAgentCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "dropbox-agent",
        abstract: "Turns JSON requests dropped into a spool directory into calibrated ALMA measurement sets.",
        discussion: """
            Drop NAME.json (a request naming an ALMA MOUS) into the spool; the agent restores the MOUS with CASA,
            keeps NAME.status.json next to it, delivers the measurement sets and sends an email.
            Without --config, built-in defaults apply (data under $DROPBOX_AGENT_DATA, /var/lib/dropbox-agent for
            root, else ~/.local/share/dropbox-agent).
            """,
        version: version,
        subcommands: [
            RunCommand.self, SubmitCommand.self, StatusCommand.self, ValidateCommand.self, CancelCommand.self,
            CheckCommand.self, CatalogCommand.self, CASACommand.self,
        ]
    )

    /// Runs the command; usage errors exit 2 as the contract says (ArgumentParser's default is 64, EX_USAGE).
    static func main() async {
        if let suggestion = CommandSuggestion.check(
            Array(CommandLine.arguments.dropFirst()), known: configuration.subcommands.map { $0._commandName })
        {
            StandardStream.write(suggestion + "\n", to: 2)
            Glibc.exit(2)
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                StandardStream.write(fullMessage(for: error) + "\n", to: 2)
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options shared by the commands that work on a spool.
struct SpoolOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (JSON). Default: built-in defaults.")
    var config: String?

    @Option(name: .long, help: "The spool directory (overrides the configuration).")
    var spool: String?

    /// The configuration with `--spool` applied.
    func load() throws -> AgentConfiguration {
        var configuration = try AgentConfiguration.load(path: config)
        if let spool {
            let previousDefaultWork = configuration.spool.directory! + "/.dropbox-agent"
            configuration.spool.directory = absolutePath(spool)
            if configuration.agent.workDirectory == previousDefaultWork {
                configuration.agent.workDirectory = configuration.spool.directory! + "/.dropbox-agent"
                configuration.spool.rejectedDirectory = configuration.agent.workDirectory! + "/rejected"
            }
        }
        return configuration
    }
}

/// Exit with a message on stderr and the given status.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    StandardStream.write("dropbox-agent: " + message + "\n", to: 2)
    return ExitCode(code)
}

func printErr(_ message: String) { StandardStream.write(message + "\n", to: 2) }
