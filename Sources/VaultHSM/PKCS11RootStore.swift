import CPKCS11
import Foundation
import VaultCrypto

/// The destruction root kept in a PKCS#11 token: one non-extractable AES-256 secret-key object per root
/// generation, labelled `"<namespace>-<generation>"`. Sealing and opening run AES-256-GCM inside the token;
/// destroying a generation is `C_DestroyObject`. See vault-format.md, "Destruction root in a PKCS#11 token".
///
/// The store owns one logged-in session; its public methods are serialized by a lock, so one store may be
/// shared between threads.
public final class PKCS11RootStore: @unchecked Sendable {
    /// GCM nonce length (a fresh random nonce per seal).
    public static let ivSize = 12
    /// GCM tag length.
    public static let tagSize = 16
    /// Root key length (AES-256).
    public static let keySize = 32
    /// Longest object label accepted (labels are free-length in PKCS#11; tokens differ in what they store).
    public static let maximumLabelSize = 128

    public let namespace: String
    let session: PKCS11Session
    private let lock = NSLock()

    /// Token calls made by this store (`C_FindObjects*`, `C_GetAttributeValue`, `C_GenerateKey`,
    /// `C_EncryptInit`/`C_Encrypt`, `C_DecryptInit`/`C_Decrypt`, `C_DestroyObject`): the "root operations" of
    /// the benchmark. Session setup (`C_OpenSession`, `C_Login`) is not counted.
    public private(set) var operations: Int {
        get {
            lock.lock()
            defer { lock.unlock() }
            return countedOperations
        }
        set {
            lock.lock()
            defer { lock.unlock() }
            countedOperations = newValue
        }
    }
    private var countedOperations = 0

    /// Loads `module`, opens a session on the token labelled `tokenLabel` and logs in with `pin`.
    /// - Parameter namespace: the label prefix of this vault's root objects, e.g. `"shredvault-root-<vault id>"`.
    public init(module: String, tokenLabel: String, pin: SecretBytes, namespace: String) throws {
        guard !namespace.isEmpty, namespace.utf8.count + 21 <= Self.maximumLabelSize else {
            throw PKCS11Error.invalidLabel(
                "a root namespace has 1 to \(Self.maximumLabelSize - 21) bytes, \"\(namespace)\" has \(namespace.utf8.count)")
        }
        self.namespace = namespace
        session = try PKCS11Session(module: PKCS11Module(path: module), tokenLabel: tokenLabel, pin: pin)
    }

    /// The object label of `generation`.
    public func label(generation: UInt64) -> String { "\(namespace)-\(generation)" }

    /// Root generations present on the token (objects labelled `"<namespace>-<generation>"`), ascending, each once.
    public func generations() throws -> [UInt64] {
        try serialized {
            let prefix = Array((namespace + "-").utf8)
            var found = Set<UInt64>()
            for object in try session.findObjects(Self.rootKeyTemplate()) {
                let label = try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_LABEL), of: object)
                guard label.count > prefix.count, label.starts(with: prefix),
                    let generation = Self.parseGeneration(label[prefix.count...])
                else { continue }
                found.insert(generation)
            }
            return found.sorted()
        }
    }

    /// Creates the AES-256 key of `generation` in the token (`C_GenerateKey`, `CKM_AES_KEY_GEN`): a private,
    /// sensitive, non-extractable token object usable only to encrypt and decrypt. Does nothing if an object
    /// with its label is already there.
    public func create(generation: UInt64) throws {
        try serialized {
            let label = label(generation: generation)
            guard try objects(label: label).isEmpty else { return }
            let template = Self.rootKeyTemplate()
                .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label)
                .add(CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), ulong: CK_ULONG(Self.keySize))
                .add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), true)
                .add(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), true)
                .add(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), false)
                .add(CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), true)
                .add(CK_ATTRIBUTE_TYPE(CKA_DECRYPT), true)
                .add(CK_ATTRIBUTE_TYPE(CKA_WRAP), false)
                .add(CK_ATTRIBUTE_TYPE(CKA_UNWRAP), false)
                .add(CK_ATTRIBUTE_TYPE(CKA_SIGN), false)
                .add(CK_ATTRIBUTE_TYPE(CKA_VERIFY), false)
                .add(CK_ATTRIBUTE_TYPE(CKA_DERIVE), false)
            _ = try session.generateKey(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), template: template)
        }
    }

    /// AES-256-GCM of `plaintext` under the key of `generation`, inside the token, with a fresh random 12-byte
    /// IV (OpenSSL's DRBG) and a 128-bit tag. Returns `iv ‖ ciphertext ‖ tag`.
    /// - Throws: `.objectNotFound` if the generation is absent, `.duplicateObject` if its label is ambiguous.
    public func seal(_ plaintext: SecretBytes, generation: UInt64, aad: [UInt8]) throws -> [UInt8] {
        try serialized {
            let label = label(generation: generation)
            let keys = try objects(label: label)
            guard let key = keys.first else { throw PKCS11Error.objectNotFound(label: label) }
            guard keys.count == 1 else { throw PKCS11Error.duplicateObject(label: label, count: keys.count) }
            let iv = try SecureRandom.bytes(count: Self.ivSize)
            var output = [UInt8](repeating: 0, count: plaintext.count + Self.tagSize)
            let written = try Self.withGCMMechanism(iv: iv, aad: aad) { mechanism in
                try plaintext.withUnsafeBytes { input in
                    try output.withUnsafeMutableBytes { out in
                        try session.encrypt(mechanism: &mechanism, key: key, input: input, output: out)
                    }
                }
            }
            guard written == plaintext.count + Self.tagSize else {
                throw PKCS11Error.unexpectedResponse(
                    function: "C_Encrypt",
                    detail: "AES-GCM gave \(written) bytes for \(plaintext.count) bytes of plaintext")
            }
            return iv + output
        }
    }

    /// Opens what `seal` produced, with the key of `generation`, inside the token.
    /// - Throws: `.authenticationFailed` if the tag does not verify (modified data, wrong AAD, another
    ///   generation's output), `.objectNotFound` if the generation is absent (for instance destroyed),
    ///   `.invalidSealedData` if `sealed` is shorter than IV and tag.
    public func open(_ sealed: [UInt8], generation: UInt64, aad: [UInt8]) throws -> SecretBytes {
        try serialized {
            guard sealed.count >= Self.ivSize + Self.tagSize else {
                throw PKCS11Error.invalidSealedData(
                    "\(sealed.count) bytes is shorter than a \(Self.ivSize)-byte IV and a \(Self.tagSize)-byte tag")
            }
            let label = label(generation: generation)
            let keys = try objects(label: label)
            guard !keys.isEmpty else { throw PKCS11Error.objectNotFound(label: label) }
            var lastError: Error = PKCS11Error.authenticationFailed
            // Normally one key; were a crash to leave two objects with one label, the one that sealed opens.
            for key in keys {
                do {
                    return try decrypt(sealed, key: key, aad: aad)
                } catch {
                    lastError = error
                }
            }
            throw lastError
        }
    }

    /// Destroys every object labelled for `generation` (`C_DestroyObject`). Does nothing if there is none.
    public func destroy(generation: UInt64) throws {
        try serialized {
            for object in try objects(label: label(generation: generation)) {
                try session.destroyObject(object)
            }
        }
    }

    // MARK: Internals

    private func serialized<R>(_ body: () throws -> R) throws -> R {
        lock.lock()
        defer {
            countedOperations = session.objectCalls
            lock.unlock()
        }
        return try body()
    }

    /// Root key objects: AES secret keys stored on the token.
    private static func rootKeyTemplate() -> AttributeTemplate {
        AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_SECRET_KEY))
            .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_AES))
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
    }

    /// Root key objects labelled `label`.
    func objects(label: String) throws -> [CK_OBJECT_HANDLE] {
        try session.findObjects(Self.rootKeyTemplate().add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label))
    }

    private func decrypt(_ sealed: [UInt8], key: CK_OBJECT_HANDLE, aad: [UInt8]) throws -> SecretBytes {
        let body = sealed[Self.ivSize...]
        // The token writes the plaintext here; it is zeroed when released.
        let buffer = SecretBytes(count: body.count)
        let written: Int
        do {
            written = try Self.withGCMMechanism(iv: Array(sealed[0..<Self.ivSize]), aad: aad) { mechanism in
                try body.withUnsafeBytes { input in
                    try buffer.withUnsafeMutableBytes { output in
                        try session.decrypt(mechanism: &mechanism, key: key, input: input, output: output)
                    }
                }
            }
        } catch let PKCS11Error.call(function, code)
            where function == "C_Decrypt" && Self.tagFailureCodes.contains(code)
        {
            throw PKCS11Error.authenticationFailed
        }
        guard written == body.count - Self.tagSize else {
            throw PKCS11Error.unexpectedResponse(
                function: "C_Decrypt", detail: "AES-GCM gave \(written) bytes for \(body.count) sealed bytes")
        }
        return buffer.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<written])) }
    }

    /// What `C_Decrypt` (after a successful `C_DecryptInit`) returns when the GCM tag does not verify:
    /// `CKR_ENCRYPTED_DATA_INVALID` or `CKR_ENCRYPTED_DATA_LEN_RANGE` per PKCS#11, and `CKR_GENERAL_ERROR` from
    /// SoftHSM 2.6.1, whose AES-GCM reports a failed tag check that way. So on SoftHSM an internal failure
    /// during `C_Decrypt` is also reported as `.authenticationFailed`.
    static let tagFailureCodes: Set<UInt> = [
        UInt(CKR_ENCRYPTED_DATA_INVALID), UInt(CKR_ENCRYPTED_DATA_LEN_RANGE), UInt(CKR_GENERAL_ERROR),
    ]

    /// Runs `body` with a `CKM_AES_GCM` mechanism over `iv` and `aad` (128-bit tag), valid only during the call.
    private static func withGCMMechanism(iv: [UInt8], aad: [UInt8], _ body: (inout CK_MECHANISM) throws -> Int) throws -> Int {
        var ivCopy = iv, aadCopy = aad
        return try ivCopy.withUnsafeMutableBufferPointer { ivBuffer in
            try aadCopy.withUnsafeMutableBufferPointer { aadBuffer in
                var parameters = gcmParameters(iv: ivBuffer, aad: aadBuffer)
                return try withUnsafeMutablePointer(to: &parameters) { parameterPointer in
                    var mechanism = CK_MECHANISM(
                        mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM), pParameter: parameterPointer,
                        ulParameterLen: CK_ULONG(MemoryLayout<CK_GCM_PARAMS>.size))
                    return try body(&mechanism)
                }
            }
        }
    }

    private static func gcmParameters(
        iv: UnsafeMutableBufferPointer<UInt8>, aad: UnsafeMutableBufferPointer<UInt8>
    ) -> CK_GCM_PARAMS {
        CK_GCM_PARAMS(
            pIv: iv.baseAddress, ulIvLen: CK_ULONG(iv.count), ulIvBits: CK_ULONG(iv.count * 8),
            pAAD: aad.count == 0 ? nil : aad.baseAddress, ulAADLen: CK_ULONG(aad.count),
            ulTagBits: CK_ULONG(tagSize * 8))
    }

    /// A generation in canonical decimal (no sign, no leading zero), within UInt64.
    static func parseGeneration(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard let first = digits.first, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        if first == 0x30, digits.count > 1 { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }
}
