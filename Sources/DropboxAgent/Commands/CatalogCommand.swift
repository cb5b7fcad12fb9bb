import ArgumentParser
import FoundationEssentials
import Glibc
import RestoreSteps

/// `dropbox-agent catalog import|show`: the embedded metadata catalogue.
struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Import MOUS metadata into the embedded catalogue, or show what a restore would use.",
        subcommands: [Import.self, Show.self, List.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Import a catalogue file (format: docs/catalog-format.md, installed as /usr/share/doc/dropbox-agent/catalog-format.md); importing a MOUS again replaces it."
        )
        @Argument(help: "The catalogue import file (JSON, schema dropbox-agent/catalog/v1).") var file: String
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?

        func run() throws {
            let c = try AgentConfiguration.load(path: config)
            guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
            let importFile: CatalogueImportFile
            do { importFile = try CatalogueImportFile.decode(data) } catch {
                for p in error.problems { printErr("\(file): \(p)") }
                throw ExitCode(1)
            }
            try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
            let catalogue = try SQLiteCatalogue(path: c.catalogue.sqlite!)
            do {
                let imported = try catalogue.import(importFile)
                for m in imported { print("imported \(m)") }
            } catch {
                throw fail("\(file): \(error)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what a restore of MOUS would use (EBs, sessions, products).")
        @Argument(help: "The MOUS uid.") var mous: String
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        @Flag(name: .long, help: "Print the catalogue record as JSON.") var json = false

        func run() throws {
            let c = try AgentConfiguration.load(path: config)
            let catalogue = try SQLiteCatalogue(path: c.catalogue.sqlite!)
            guard let record = try catalogue.mous(mous) else {
                throw fail("\(mous) is not in the catalogue \(c.catalogue.sqlite!)")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(record), as: UTF8.self))
                return
            }
            print("MOUS \(record.mous)  project \(record.project)  \"\(record.title)\"")
            print(
                "SB \(record.schedBlock.uid) \(record.schedBlock.name); release \(record.releaseDate.map { "\($0)" } ?? "unknown")"
            )
            for eb in record.execBlocks {
                print(
                    "  EB \(eb.uid)  QA0 \(eb.qa0.rawValue)  session \(eb.sessionId ?? "-")  asdm \(eb.asdm?.ngasFileId ?? "-")"
                )
            }
            for p in record.products { print("  \(p.fileClass.rawValue)  \(p.file.ngasFileId)  \(p.file.size) bytes") }
            do {
                let plan = try Restorability.plan(
                    for: RestoreRequest(mous: mous), record: record, now: Date(),
                    allowProprietary: c.catalogue.allowProprietary)
                print("restorable:")
                for line in plan.summaryLines { print("  " + line) }
            } catch {
                print("not restorable: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the MOUSes in the catalogue.")
        @Option(name: .long, help: "Configuration file (JSON).") var config: String?
        func run() throws {
            let c = try AgentConfiguration.load(path: config)
            for m in try SQLiteCatalogue(path: c.catalogue.sqlite!).mouses() { print(m) }
        }
    }
}
