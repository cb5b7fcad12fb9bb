internal import CLibXML2

/// Why a document could not be written (libxml2 refused a call: a writer bug or out of memory).
struct XMLWriteError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A small wrapper over libxml2's `xmlTextWriter` writing an indented UTF-8 document into memory.
///
/// Elements holding text are written on one line (`<A>text</A>`), so indentation never puts whitespace
/// inside a leaf. Text and attribute values are escaped by libxml2.
final class XMLWriter {
    private let buffer: xmlBufferPtr
    private let writer: xmlTextWriterPtr
    private var finished = false

    /// Starts a document (`<?xml version="1.0" encoding="UTF-8"?>`), indented with `indent`.
    /// The corresponding C functions are `xmlNewTextWriterMemory` and `xmlTextWriterStartDocument`.
    init(indent: String = "    ") throws(XMLWriteError) {
        guard let buffer = xmlBufferCreate() else { throw XMLWriteError(message: "xmlBufferCreate failed") }
        guard let writer = xmlNewTextWriterMemory(buffer, 0) else {
            xmlBufferFree(buffer)
            throw XMLWriteError(message: "xmlNewTextWriterMemory failed")
        }
        self.buffer = buffer
        self.writer = writer
        try check(xmlTextWriterSetIndent(writer, 1), "xmlTextWriterSetIndent")
        try check(xmlTextWriterSetIndentString(writer, indent), "xmlTextWriterSetIndentString")
        try check(xmlTextWriterStartDocument(writer, "1.0", "UTF-8", nil), "xmlTextWriterStartDocument")
    }

    deinit {
        xmlFreeTextWriter(writer)
        xmlBufferFree(buffer)
    }

    /// Opens an element; with `prefix` and `namespaceURI` the prefix is declared on it.
    func start(_ name: String, prefix: String? = nil, namespaceURI: String? = nil) throws(XMLWriteError) {
        if prefix != nil || namespaceURI != nil {
            try check(xmlTextWriterStartElementNS(writer, prefix, name, namespaceURI), "start <\(name)>")
        } else {
            try check(xmlTextWriterStartElement(writer, name), "start <\(name)>")
        }
    }

    /// Writes an attribute on the element just opened.
    func attribute(_ name: String, _ value: String) throws(XMLWriteError) {
        try check(xmlTextWriterWriteAttribute(writer, name, value), "attribute \(name)")
    }

    /// Writes text content (escaped).
    func text(_ value: String) throws(XMLWriteError) {
        try check(xmlTextWriterWriteString(writer, value), "text")
    }

    /// Closes the innermost open element (`/>` when it is empty).
    func end() throws(XMLWriteError) {
        try check(xmlTextWriterEndElement(writer), "end element")
    }

    /// Writes `<name attributes…>value</name>` on one line; an empty value gives `<name …/>`.
    func leaf(_ name: String, _ value: String, attributes: [(String, String)] = []) throws(XMLWriteError) {
        try start(name)
        for (key, attributeValue) in attributes { try attribute(key, attributeValue) }
        if !value.isEmpty { try text(value) }
        try end()
    }

    /// Ends the document and returns its text.
    /// The corresponding C function is `xmlTextWriterEndDocument`.
    func finish() throws(XMLWriteError) -> String {
        if !finished {
            try check(xmlTextWriterEndDocument(writer), "end document")
            try check(xmlTextWriterFlush(writer), "flush")
            finished = true
        }
        guard let content = xmlBufferContent(buffer) else { return "" }
        return String(cString: content)
    }

    private func check(_ rc: Int32, _ what: String) throws(XMLWriteError) {
        if rc < 0 { throw XMLWriteError(message: "libxml2 writer failed: \(what)") }
    }
}
