import ArgumentParser

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Check configuration, directories, filesystem, inotify limits, CASA, archive store and SMTP.")
    @Option(name: .long, help: "Configuration file (JSON).") var config: String?
    func run() async throws { throw fail("not yet available") }
}
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catalog", abstract: "Import MOUS metadata into the embedded catalogue, or show what a restore would use.")
    func run() async throws { throw fail("not yet available") }
}
struct CASACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "casa", abstract: "Create or check the modular CASA environment.")
    func run() async throws { throw fail("not yet available") }
}
