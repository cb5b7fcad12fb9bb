import ArgumentParser
import FoundationEssentials
import Glibc
import Logging

/// `dropbox-agent run`: the daemon, in the foreground; stops cleanly on SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent in the foreground (logs to stderr; SIGTERM/SIGINT stop it cleanly).")

    @OptionGroup var spoolOptions: SpoolOptions

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let configuration: AgentConfiguration
        do { configuration = try spoolOptions.load() } catch { throw fail("\(error)", code: 1) }
        JSONLogHandler.bootstrap(level: configuration.logging.level, format: configuration.logging.format)
        let logger = Logger(label: "dropbox-agent")
        do {
            let runtime = try AgentRuntime(configuration: configuration, logger: logger)
            try await runtime.run()
        } catch {
            logger.critical("the agent cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
