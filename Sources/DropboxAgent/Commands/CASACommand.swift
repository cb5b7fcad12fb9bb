import ArgumentParser
import FoundationEssentials
import Glibc
import RestoreSteps

/// `dropbox-agent casa install|check`: the embedded modular CASA environment.
struct CASACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casa",
        abstract: "Create or check the modular CASA environment (PyPI casatools/casatasks, offline).",
        subcommands: [Install.self, Check.self])

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create (or update) a modular CASA venv; needs PyPI once.",
            discussion: """
                Without --version: the embedded environment at casa.modularVenv, with the CASA casa/requirements.txt pins.
                With --version X: casatools==X and casatasks==X in <data>/casa-venvs/X (unless --venv), which restores \
                then use as installation "modular-X". PyPI must have a casatools X wheel for this Python; on Debian 12 \
                (Python 3.11) that is 6.7.0.31 and 6.6.5.31 (casa/README.md).
                """)
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        @Option(name: .long, help: "The Python 3.11 to build the venv with.") var python = "python3"
        @Option(name: .long, help: "CASA version to install (e.g. 6.6.5.31) instead of the pinned one.") var version:
            String?
        @Option(
            name: .long,
            help: "The venv directory (default: casa.modularVenv, or <data>/casa-venvs/<version> with --version).")
        var venv: String?

        func validate() throws {
            if let version, CASAVersion(version) == nil || version.contains(where: { !($0.isNumber || $0 == ".") }) {
                throw ValidationError("--version must look like 6.6.5.31, not \"\(version)\"")
            }
        }

        func run() async throws {
            let c = try AgentConfiguration.load(path: config)
            guard let programDir = c.casa.programDirectory else {
                throw fail("cannot find casa/restore_mous.py next to the binary; set casa.programDirectory")
            }
            let pinned = CASAEnvironment.pinnedVersion(programDir: programDir)
            let target =
                venv
                ?? (version.map { c.casaVenvsDirectory + "/" + (CASAVersion($0)?.description ?? $0) } ?? c.casa
                    .modularVenv!)
            let what = version.map { "CASA \($0)" } ?? "the modular CASA environment (CASA \(pinned ?? "?"))"
            print("installing \(what) into \(target) (about 2 GB; a few minutes the first time)")
            do {
                try await CASAEnvironment.install(
                    venv: target, programDir: programDir, version: version, python: python)
            } catch {
                throw fail("\(error)")
            }
            let status = await CASAEnvironment.check(venv: target, programDir: programDir, python: python)
            print(
                status.ok
                    ? "ok: CASA \(status.version ?? "?") (casatools \(status.casatools ?? "?"), casatasks \(status.casatasks ?? "?"))"
                    : "not ok: \(status.problems.joined(separator: "; "))")
            if !status.ok { throw ExitCode(1) }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that the modular CASA environment works offline.")
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        @Option(name: .long, help: "The venv to check (default: casa.modularVenv).") var venv: String?
        func run() async throws {
            let c = try AgentConfiguration.load(path: config)
            guard let programDir = c.casa.programDirectory else {
                throw fail("cannot find casa/restore_mous.py; set casa.programDirectory")
            }
            let target = venv ?? c.casa.modularVenv!
            let status = await CASAEnvironment.check(venv: target, programDir: programDir)
            print(
                status.ok
                    ? "ok: \(target): CASA \(status.version ?? "?") (casatools \(status.casatools ?? "?"), casatasks \(status.casatasks ?? "?"))"
                    : "not ok: \(status.problems.joined(separator: "; "))")
            if !status.ok { throw ExitCode(1) }
        }
    }
}
