import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element: name (without namespace prefix), the text directly inside it, and its child elements.
/// Attributes, comments and processing instructions are dropped: S3's answers carry their data in elements.
struct XMLElementNode: Sendable {
    var name: String
    var text: String
    var children: [XMLElementNode]

    /// The first child element called `name`.
    func child(_ name: String) -> XMLElementNode? { children.first { $0.name == name } }

    /// Every child element called `name`, in document order.
    func children(_ name: String) -> [XMLElementNode] { children.filter { $0.name == name } }

    /// The text of the first child called `name`, exactly as sent (entities decoded, whitespace kept).
    func value(_ name: String) -> String? { child(name)?.text }

    /// Parses `bytes` with Foundation's `XMLParser` (libxml2; external entities are not resolved).
    static func parse(_ bytes: [UInt8]) -> XMLElementNode? {
        let parser = XMLParser(data: Data(bytes))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = true
        let builder = TreeBuilder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        private var stack: [XMLElementNode] = []
        private(set) var root: XMLElementNode?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
        ) {
            stack.append(XMLElementNode(name: elementName, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
        ) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }
    }
}

/// Builds the small XML request bodies S3 takes (DeleteObjects, CompleteMultipartUpload).
struct XMLWriter {
    private(set) var text = #"<?xml version="1.0" encoding="UTF-8"?>"#

    mutating func open(_ name: String) { text += "<\(name)>" }
    mutating func close(_ name: String) { text += "</\(name)>" }

    /// `<name>escaped value</name>`.
    mutating func element(_ name: String, _ value: String) {
        text += "<\(name)>\(Self.escape(value))</\(name)>"
    }

    var bytes: [UInt8] { Array(text.utf8) }

    /// Escapes the five XML special characters, and carriage returns (which XML parsers would otherwise turn into
    /// line feeds, changing a key).
    static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
