public import FoundationEssentials
internal import Glibc

/// The catalogue import file (`dropbox-agent catalog import FILE`, schema `dropbox-agent/catalog/v1`,
/// INTERFACES.md §1; field by field in docs/catalog-format.md, JSON Schema in schemas/catalog.schema.json).
///
/// Fields are kept as the JSON spells them (strings), so that ``decode(_:)`` can report *every* problem with
/// its JSON path instead of stopping at the first; ``records()`` turns a valid file into ``MousRecord``s.
public struct CatalogueImportFile: Codable, Sendable, Hashable {
    /// The schema id this type reads and writes.
    public static let schemaId = "dropbox-agent/catalog/v1"

    /// Must be ``schemaId``.
    public var schema: String
    /// The MOUSes, each imported (or replaced) as a whole.
    public var mouses: [Mous]

    public init(schema: String = CatalogueImportFile.schemaId, mouses: [Mous]) {
        self.schema = schema
        self.mouses = mouses
    }

    /// One MOUS: the record's field list (``MousFields``) with the fields as the JSON spells them.
    public typealias Mous = MousFields<WrittenMousFields>
    /// The MOUS's scheduling block.
    public typealias SchedBlock = Mous.SchedBlock
    /// An `AQUA_SESSION` row.
    public typealias Session = Mous.Session
    /// An `AQUA_EXECBLOCK` row with its ASDM file.
    public typealias ExecBlock = Mous.ExecBlock

    /// A file in the archive store.
    public struct File: Codable, Sendable, Hashable {
        public var ngasFileId: String
        public var size: Int64
        public var checksum: String?
        public var checksumVariant: String?
        public init(ngasFileId: String, size: Int64, checksum: String?, checksumVariant: String?) {
            self.ngasFileId = ngasFileId
            self.size = size
            self.checksum = checksum
            self.checksumVariant = checksumVariant
        }
    }

    /// An `ASA_PRODUCT_FILES` row.
    public struct Product: Codable, Sendable, Hashable {
        public var fileClass: String
        public var ngasFileId: String
        public var size: Int64
        public var checksum: String?
        public var checksumVariant: String?
        public init(fileClass: String, ngasFileId: String, size: Int64, checksum: String?, checksumVariant: String?) {
            self.fileClass = fileClass
            self.ngasFileId = ngasFileId
            self.size = size
            self.checksum = checksum
            self.checksumVariant = checksumVariant
        }
    }
}

/// The leaves of an import file's MOUS: strings as the JSON spells them (checked by ``CatalogueImportFile/validate()``,
/// turned into a ``MousRecord`` by ``CatalogueImportFile/records()``); `sessions` may be left out.
public enum WrittenMousFields: MousFieldTypes {
    public typealias Uid = String
    public typealias Time = String
    public typealias QA0 = String
    public typealias File = CatalogueImportFile.File
    public typealias Product = CatalogueImportFile.Product
    public typealias Sessions = [MousSession<String>]?
}

/// Why a catalogue import file was refused: every problem found, each with its JSON path.
public struct CatalogueImportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// One problem at one place in the file.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// JSONPath-like location, e.g. `$.mouses[0].execBlocks[2].qa0`.
        public var path: String
        /// What is wrong there.
        public var message: String
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
        public var description: String { "\(path): \(message)" }
    }

    /// Every problem, in file order.
    public var problems: [Problem]

    public init(problems: [Problem]) { self.problems = problems }

    public var description: String {
        "catalogue import file has \(problems.count) problem(s):\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

extension CatalogueImportFile {
    /// Reads and validates an import file: JSON syntax, unknown or missing fields, types, then the rules of
    /// ``validate()``.
    ///
    /// - Throws: ``CatalogueImportError`` listing every problem with its JSON path.
    public static func decode(_ data: Data) throws(CatalogueImportError) -> CatalogueImportFile {
        let json: CatalogueFieldCheck.Tree
        do {
            json = try JSONDecoder().decode(CatalogueFieldCheck.Tree.self, from: data)
        } catch {
            throw CatalogueImportError(problems: [
                .init(path: "$", message: "not valid JSON: \(CatalogueFieldCheck.describe(error))")
            ])
        }
        var problems = CatalogueFieldCheck.unknownFields(in: json)
        let file: CatalogueImportFile
        do {
            file = try JSONDecoder().decode(CatalogueImportFile.self, from: data)
        } catch let error as DecodingError {
            problems.append(CatalogueFieldCheck.problem(from: error))
            throw CatalogueImportError(problems: problems)
        } catch {
            problems.append(.init(path: "$", message: "\(error)"))
            throw CatalogueImportError(problems: problems)
        }
        problems += file.validate()
        if !problems.isEmpty { throw CatalogueImportError(problems: problems) }
        return file
    }

    /// Encodes the file as pretty, key-sorted JSON (for `catalog show`/export).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
