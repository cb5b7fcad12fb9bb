import ArgumentParser
import Foundation
import RestoreSteps

/// `dropbox-agent casa install|check`: the embedded modular CASA environment.
struct CASACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casa", abstract: "Create or check the modular CASA environment (PyPI casatools/casatasks, offline).",
        subcommands: [Install.self, Check.self])

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create (or update) the modular CASA venv at casa.modularVenv; needs PyPI once.")
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        @Option(name: .long, help: "The Python 3.11 to build the venv with.") var python = "python3"

        func run() async throws {
            let c = try AgentConfiguration.load(path: config)
            guard let programDir = c.casa.programDirectory else { throw fail("cannot find casa/restore_mous.py next to the binary; set casa.programDirectory") }
            print("installing the modular CASA environment into \(c.casa.modularVenv!) (about 2 GB; a few minutes the first time)")
            do { try await CASAEnvironment.install(venv: c.casa.modularVenv!, programDir: programDir, python: python) } catch {
                throw fail("\(error)")
            }
            let status = await CASAEnvironment.check(venv: c.casa.modularVenv!, programDir: programDir, python: python)
            print(status.ok ? "ok: casatools \(status.casatools ?? "?"), casatasks \(status.casatasks ?? "?")" : "not ok: \(status.problems.joined(separator: "; "))")
            if !status.ok { throw ExitCode(1) }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that the modular CASA environment works offline.")
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        func run() async throws {
            let c = try AgentConfiguration.load(path: config)
            guard let programDir = c.casa.programDirectory else { throw fail("cannot find casa/restore_mous.py; set casa.programDirectory") }
            let status = await CASAEnvironment.check(venv: c.casa.modularVenv!, programDir: programDir)
            print(status.ok ? "ok: \(c.casa.modularVenv!): casatools \(status.casatools ?? "?"), casatasks \(status.casatasks ?? "?")" : "not ok: \(status.problems.joined(separator: "; "))")
            if !status.ok { throw ExitCode(1) }
        }
    }
}
