/// The field rules of `VAULT/config` (vault-format.md §6), checked on every load: a config that breaks one is refused
/// with the file and the field named, before any job uses it.
extension VaultConfig {
    /// The latest `createdAt` accepted: 9999-12-31T23:59:59Z (the last time `--now` can name).
    static let latestTime: Int64 = 253_402_300_799

    /// The first invalid field, named by its JSON path (`vaultId`, `root.path`, `policy.holidays[2]`), and what is
    /// wrong with it; nil when every field is valid.
    public var invalidField: (field: String, reason: String)? {
        if !format.utf8.elementsEqual(Self.formatName.utf8) {
            return ("format", "unknown vault format \(Self.quoted(format)) (this shredvault reads \(Self.formatName)); upgrade shredvault")
        }
        if !Self.isLowerHex(vaultId, count: 32) {
            return ("vaultId", "must be 32 lower-case hexadecimal digits (16 bytes), not \(Self.quoted(vaultId))")
        }
        if !(0...Self.latestTime).contains(createdAt) {
            return ("createdAt", "must be a time from 1970 to 9999 in Unix seconds, not \(createdAt)")
        }
        if let problem = Self.pathProblem(keystorePath, relativeAllowed: true) { return ("keystorePath", problem) }
        if let keyringPath, let problem = Self.pathProblem(keyringPath) { return ("keyringPath", problem) }
        if let root, let (field, problem) = Self.rootProblem(root) { return ("root." + field, problem) }
        if let jobKeyPath, let problem = Self.pathProblem(jobKeyPath) { return ("jobKeyPath", problem) }
        if let bundleStore {
            do { _ = try BundleStoreURL(parsing: bundleStore) } catch {
                return ("bundleStore", "must be an s3://BUCKET[/PREFIX] URL, not \(Self.quoted(bundleStore))")
            }
        }
        if let (field, problem) = policy.invalidField { return ("policy." + field, problem) }
        return nil
    }

    private static func rootProblem(_ root: RootConfig) -> (String, String)? {
        switch root.kind {
        case "file":
            guard let path = root.path else { return ("path", "is missing: a root of kind file needs the absolute path of its root file") }
            return pathProblem(path).map { ("path", $0) }
        case "pkcs11":
            guard let module = root.module else { return ("module", "is missing: a root of kind pkcs11 needs the PKCS#11 module's path") }
            if let problem = pathProblem(module) { return ("module", problem) }
            guard let token = root.token, !token.isEmpty, token.utf8.count <= 32 else {
                return ("token", "must be the token's label, 1 to 32 bytes")
            }
            if let pinFile = root.pinFile, let problem = pathProblem(pinFile) { return ("pinFile", problem) }
            return nil
        default:
            return ("kind", "unknown destruction root kind \(quoted(root.kind)) (file or pkcs11); upgrade shredvault")
        }
    }

    /// Paths outside the vault are absolute; the keystore may also be relative to the vault directory, inside it.
    private static func pathProblem(_ path: String, relativeAllowed: Bool = false) -> String? {
        if path.isEmpty { return "is empty; it must name a file" }
        if path.utf8.contains(0) { return "contains a NUL character" }
        if path.utf8.first == UInt8(ascii: "/") { return nil }
        guard relativeAllowed else { return "must be an absolute path, not \(quoted(path))" }
        if path.utf8.split(separator: UInt8(ascii: "/")).contains(where: { $0.elementsEqual("..".utf8) }) {
            return "must be absolute or stay inside the vault directory (no '..' component), not \(quoted(path))"
        }
        return nil
    }

    static func isLowerHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// A value for an error line: quoted, escaped (a newline or control character cannot break the line), at most 64
    /// characters.
    static func quoted(_ value: String) -> String {
        let cut = value.count > 64 ? String(value.prefix(64)) + "…" : value
        return cut.debugDescription
    }

    /// The field and a sentence for a decoding failure: which key is missing or has the wrong type; `document` names
    /// what the file should be when it is not even that.
    static func describe(_ error: DecodingError, document: String = "a ShredVault config") -> (field: String, reason: String) {
        func name(_ path: [CodingKey]) -> String {
            var out = ""
            for key in path {
                if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (name(context.codingPath + [key]), "is missing")
        case .typeMismatch(let type, let context):
            return (name(context.codingPath), "has the wrong type (expected \(typeName(type)))")
        case .valueNotFound(let type, let context):
            return (name(context.codingPath), "is null (expected \(typeName(type)))")
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? ("", "is not a JSON object of \(document)")
                                              : (name(context.codingPath), "has an invalid value")
        @unknown default:
            return ("", "cannot be read")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "an integer"
        case is [String].Type: return "an array of strings"
        default: return "an object"
        }
    }
}
