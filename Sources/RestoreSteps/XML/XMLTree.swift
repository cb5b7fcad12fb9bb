internal import CLibXML2
internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Why an XML document could not be read.
struct XMLReadError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with libxml2's message and line where available.
    var message: String
    var description: String { message }
}

/// A parsed XML document owned by Swift: parsed with libxml2 and freed when the last reference goes.
///
/// Parsing is safe for untrusted input: no network access (`XML_PARSE_NONET`), no entity substitution
/// (`XML_PARSE_NOENT` is *not* set), no external DTD loading, and documents with a DOCTYPE are refused
/// outright (none of the documents we read — manifests, OUSStatus, PPRs — has one, and a DOCTYPE is the
/// only way to declare entities). Errors are collected from the parser context, never printed.
final class XMLTree {
    private let doc: xmlDocPtr

    private init(doc: xmlDocPtr) { self.doc = doc }
    deinit { xmlFreeDoc(doc) }

    private static let options = Int32(
        XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
    private static let initialised: Bool = {
        xmlInitParser()
        return true
    }()

    /// Parses a document held in memory. `name` only labels error messages.
    /// The corresponding C function is `xmlCtxtReadMemory`.
    static func parse(string: String, name: String = "document") throws(XMLReadError) -> XMLTree {
        _ = initialised
        guard let ctxt = xmlNewParserCtxt() else { throw XMLReadError(message: "\(name): out of memory") }
        defer { xmlFreeParserCtxt(ctxt) }
        let bytes = Array(string.utf8)
        guard !bytes.isEmpty else { throw XMLReadError(message: "\(name): empty document") }
        guard bytes.count < Int(Int32.max) else { throw XMLReadError(message: "\(name): document too large") }
        let doc: xmlDocPtr? = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(buffer.count, 1)) { pointer in
                xmlCtxtReadMemory(ctxt, pointer, Int32(buffer.count), name, "UTF-8", options)
            }
        }
        return try finish(doc, ctxt: ctxt, name: name)
    }

    /// Parses the file at `path`.
    /// The corresponding C function is `xmlCtxtReadFile`.
    static func parse(file path: String) throws(XMLReadError) -> XMLTree {
        _ = initialised
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw XMLReadError(message: "\(path): cannot be read (missing or not readable)")
        }
        guard let ctxt = xmlNewParserCtxt() else { throw XMLReadError(message: "\(path): out of memory") }
        defer { xmlFreeParserCtxt(ctxt) }
        let doc = xmlCtxtReadFile(ctxt, path, nil, options)
        return try finish(doc, ctxt: ctxt, name: path)
    }

    private static func finish(_ doc: xmlDocPtr?, ctxt: xmlParserCtxtPtr, name: String) throws(XMLReadError) -> XMLTree
    {
        guard let doc, ctxt.pointee.wellFormed != 0 else {
            if let doc { xmlFreeDoc(doc) }
            throw XMLReadError(message: "\(name): not well-formed XML: \(lastError(ctxt))")
        }
        let tree = XMLTree(doc: doc)  // frees doc from here on
        if ctxt.pointee.nsWellFormed == 0 {
            throw XMLReadError(message: "\(name): namespace error (undeclared prefix?): \(lastError(ctxt))")
        }
        if doc.pointee.intSubset != nil || doc.pointee.extSubset != nil {
            throw XMLReadError(message: "\(name): documents with a DOCTYPE are not accepted")
        }
        guard tree.root != nil else { throw XMLReadError(message: "\(name): no root element") }
        return tree
    }

    private static func lastError(_ ctxt: xmlParserCtxtPtr) -> String {
        guard let error = xmlCtxtGetLastError(UnsafeMutableRawPointer(ctxt)) else { return "unknown error" }
        let message =
            error.pointee.message.map { String(cString: $0) }?
            .trimmingWhitespaceAndNewlines() ?? "unknown error"
        return "line \(error.pointee.line): \(message)"
    }

    /// The document element.
    var root: XMLNode? {
        guard let node = xmlDocGetRootElement(doc) else { return nil }
        return XMLNode(node: node, tree: self)
    }
}

/// One node of an ``XMLTree``; keeps the tree alive.
struct XMLNode {
    fileprivate let node: xmlNodePtr
    private let tree: XMLTree

    fileprivate init(node: xmlNodePtr, tree: XMLTree) {
        self.node = node
        self.tree = tree
    }

    /// The kind of a child node, as far as leaf checks care.
    enum Kind: Equatable {
        case element, text, cdata, comment, entityReference, processingInstruction, other
    }

    var kind: Kind {
        switch node.pointee.type {
        case XML_ELEMENT_NODE: .element
        case XML_TEXT_NODE: .text
        case XML_CDATA_SECTION_NODE: .cdata
        case XML_COMMENT_NODE: .comment
        case XML_ENTITY_REF_NODE: .entityReference
        case XML_PI_NODE: .processingInstruction
        default: .other
        }
    }

    /// The element's name as written, without any prefix.
    var localName: String { node.pointee.name.map { String(cString: $0) } ?? "" }

    /// The prefix used on the element in the document, if any.
    var prefix: String? { node.pointee.ns?.pointee.prefix.map { String(cString: $0) } }

    /// The namespace URI of the element, or nil when it is in no namespace.
    var namespaceURI: String? {
        guard let ns = node.pointee.ns, let href = ns.pointee.href else { return nil }
        let uri = String(cString: href)
        return uri.isEmpty ? nil : uri
    }

    /// The source line (for messages).
    var line: Int { Int(xmlGetLineNo(node)) }

    /// Every child node, in order (text, comments, elements…).
    var children: [XMLNode] {
        var result: [XMLNode] = []
        var child = node.pointee.children
        while let current = child {
            result.append(XMLNode(node: current, tree: tree))
            child = current.pointee.next
        }
        return result
    }

    /// The child elements, in order.
    var elements: [XMLNode] { children.filter { $0.kind == .element } }

    /// The child elements with the given local name (namespaces ignored, as the pipeline does).
    func elements(_ name: String) -> [XMLNode] { elements.filter { $0.localName == name } }

    /// The first child element with the given local name.
    func element(_ name: String) -> XMLNode? { elements.first { $0.localName == name } }

    /// Follows a path of local names from this node (first match at each level).
    func element(path: [String]) -> XMLNode? {
        var current: XMLNode? = self
        for name in path { current = current?.element(name) }
        return current
    }

    /// Every descendant element (depth first, document order) with the given local name.
    func descendants(_ name: String) -> [XMLNode] {
        var result: [XMLNode] = []
        for child in elements {
            if child.localName == name { result.append(child) }
            result.append(contentsOf: child.descendants(name))
        }
        return result
    }

    /// An attribute's value by local name (any namespace), or nil.
    func attribute(_ name: String) -> String? {
        var attribute = node.pointee.properties
        while let current = attribute {
            if let attributeName = current.pointee.name, String(cString: attributeName) == name {
                guard let value = xmlNodeGetContent(UnsafeMutablePointer<xmlNode>(OpaquePointer(current))) else {
                    return ""
                }
                defer { cxml_free(value) }
                return String(cString: value)
            }
            attribute = current.pointee.next
        }
        return nil
    }

    /// The concatenated text of this node and its descendants.
    /// The corresponding C function is `xmlNodeGetContent`.
    var text: String {
        guard let value = xmlNodeGetContent(node) else { return "" }
        defer { cxml_free(value) }
        return String(cString: value)
    }

    /// The text of this node with surrounding whitespace removed.
    var trimmedText: String { text.trimmingWhitespaceAndNewlines() }
}
