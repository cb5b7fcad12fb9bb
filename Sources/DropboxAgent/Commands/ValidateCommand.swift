import ArgumentParser
import FoundationEssentials
import Glibc
import RestoreSteps

/// `dropbox-agent validate FILE`: checks a request without running it.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a request without running it; print every problem with its JSON path.",
        discussion: "With --plan, also check it against the catalogue and print what would be fetched and the PPR.")

    @Argument(help: "The request file (JSON).")
    var file: String

    @Option(name: .long, help: "Configuration file (JSON). Default: built-in defaults.")
    var config: String?

    @Flag(
        name: .long, help: "Also print the restore plan (files to fetch, sessions) and the PPR that would be written.")
    var plan = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
        if data.count > 65536 { throw fail("\(file): $: the request is \(data.count) bytes; the limit is 65536 bytes") }
        let parsed: ParsedRequest
        do { parsed = try RequestParser.parse([UInt8](data)) } catch {
            for p in error.problems { print("\(file): \(p)") }
            throw ExitCode(1)
        }
        for field in parsed.ignoredFields { print("\(file): \(field): ignored (not used by the agent)") }
        // With a configuration, the CASA installation the request names must be one of it (as at intake).
        if config != nil || plan, parsed.request.casa != nil {
            let configuration = try AgentConfiguration.load(path: config)
            do {
                _ = try CASASelection.requestedInstallation(
                    parsed.request.casa, installations: ProductionExecutor.casaInstallations(configuration))
            } catch {
                let path = parsed.request.form == .native ? "$.casa" : "$.metadata.casaHome"
                print("\(file): \(path): \(error.message)")
                throw ExitCode(1)
            }
        }
        print(
            "\(file): valid \(parsed.request.form == .native ? "native request" : "workflow event") for \(parsed.request.mous)"
        )
        if plan {
            let configuration = try AgentConfiguration.load(path: config)
            do {
                print(try await PlanPreview.render(for: parsed.request, configuration: configuration))
            } catch {
                print("\(file): cannot be restored: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
