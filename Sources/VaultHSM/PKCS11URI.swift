/// The subset of RFC 7512 `pkcs11:` URIs that names a destruction-root or restore-key token, e.g.
/// `pkcs11:token=ShredVault;object=restore-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/shredvault/pin`.
///
/// Path attributes: `token` (required: the token label), `object` (an object label). Query attributes:
/// `module-path`, `pin-source` (an absolute path or a `file:` URI of a PIN file; see `PKCS11PIN`).
/// `pin-value` is refused (a PIN must not appear in a command line or a configuration file), and so is every
/// other standard attribute (`slot-id`, `serial`, `module-name`, ...): ignoring one could select another token
/// than the one meant. Vendor attributes (`x-…`) are ignored, as RFC 7512 allows. Values are percent-decoded.
public struct PKCS11URI: Equatable, Sendable {
    public var token: String
    public var object: String?
    public var modulePath: String?
    /// The PIN file's path (from `pin-source`).
    public var pinFile: String?

    public init(token: String, object: String? = nil, modulePath: String? = nil, pinFile: String? = nil) {
        self.token = token
        self.object = object
        self.modulePath = modulePath
        self.pinFile = pinFile
    }

    /// Parses `text`. - Throws: `PKCS11Error.invalidURI` naming the problem.
    public init(parsing text: String) throws {
        let scheme = "pkcs11:"
        guard text.lowercased().hasPrefix(scheme) else {
            throw PKCS11Error.invalidURI("it does not start with \"pkcs11:\"")
        }
        let rest = text.dropFirst(scheme.count)
        if rest.contains("#") { throw PKCS11Error.invalidURI("a fragment (#) is not allowed") }
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = try Self.attributes(parts[0], separator: ";", kind: "path")
        let query = parts.count > 1 ? try Self.attributes(parts[1], separator: "&", kind: "query") : [:]

        for name in path.keys where name != "token" && name != "object" && !name.hasPrefix("x-") {
            throw PKCS11Error.invalidURI("path attribute \"\(name)\" is not supported (use token and object)")
        }
        for name in query.keys where name != "module-path" && name != "pin-source" && !name.hasPrefix("x-") {
            if name == "pin-value" {
                throw PKCS11Error.invalidURI(
                    "pin-value is not accepted: give the PIN in SHREDVAULT_PKCS11_PIN or a pin-source file")
            }
            throw PKCS11Error.invalidURI("query attribute \"\(name)\" is not supported (use module-path, pin-source)")
        }
        guard let token = path["token"], !token.isEmpty else {
            throw PKCS11Error.invalidURI("the token attribute (the token label) is required")
        }
        self.token = token
        object = path["object"]
        modulePath = query["module-path"]
        if let source = query["pin-source"] {
            pinFile = try Self.filePath(pinSource: source)
        }
    }

    private static func attributes(_ text: Substring, separator: Character, kind: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: separator, omittingEmptySubsequences: false) {
            if pair.isEmpty {
                if text.isEmpty { break }
                throw PKCS11Error.invalidURI("an empty \(kind) attribute")
            }
            guard let equals = pair.firstIndex(of: "=") else {
                throw PKCS11Error.invalidURI("\(kind) attribute \"\(pair)\" has no value")
            }
            let name = String(pair[..<equals]).lowercased()
            let value = try percentDecode(pair[pair.index(after: equals)...])
            guard result[name] == nil else { throw PKCS11Error.invalidURI("\(kind) attribute \"\(name)\" appears twice") }
            result[name] = value
        }
        return result
    }

    private static func percentDecode(_ text: Substring) throws -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.next().flatMap(hexValue), let low = utf8.next().flatMap(hexValue) else {
                throw PKCS11Error.invalidURI("a % not followed by two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw PKCS11Error.invalidURI("a value is not UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `file:///p`, `file:/p` or `/p` → `/p`.
    private static func filePath(pinSource source: String) throws -> String {
        var path = Substring(source)
        if path.lowercased().hasPrefix("file://") {
            path = path.dropFirst("file://".count)
            guard path.hasPrefix("/") else {
                throw PKCS11Error.invalidURI("pin-source \"\(source)\" names a host; only local files are read")
            }
        } else if path.lowercased().hasPrefix("file:") {
            path = path.dropFirst("file:".count)
        }
        guard path.hasPrefix("/") else {
            throw PKCS11Error.invalidURI("pin-source must be an absolute path or a file: URI, not \"\(source)\"")
        }
        return String(path)
    }
}
