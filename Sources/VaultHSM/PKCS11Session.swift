import CPKCS11
import VaultCrypto

/// A read-write session on the token with a given label, logged in as the user (`CKU_USER`).
///
/// A session must not be used from two threads at once (PKCS#11 sessions are single-threaded); callers
/// such as `PKCS11RootStore` serialize their calls. PKCS#11 login state belongs to the application and the
/// token, not the session: a second session on the same token finds the user already logged in
/// (`CKR_USER_ALREADY_LOGGED_IN`, accepted), and only the last session of a token logs out.
public final class PKCS11Session {
    public let module: PKCS11Module
    public let tokenLabel: String
    let slot: CK_SLOT_ID
    let handle: CK_SESSION_HANDLE
    private var isOpen = true
    /// Object and crypto calls made through this session (find, attribute, generate, encrypt, decrypt,
    /// derive, destroy, random); opening, login and logout are not counted.
    public private(set) var objectCalls = 0

    /// Finds the token labelled `tokenLabel`, opens a read-write session and logs in with `pin`.
    /// - Throws: `PKCS11Error.tokenNotFound` / `.ambiguousToken`, `.invalidLabel` for a label over 32 bytes,
    ///   `.call(function: "C_Login", code: CKR_PIN_INCORRECT)` for a wrong PIN, and so on.
    public init(module: PKCS11Module, tokenLabel: String, pin: SecretBytes) throws {
        guard !tokenLabel.isEmpty, tokenLabel.utf8.count <= PKCS11Label.tokenLabelSize else {
            throw PKCS11Error.invalidLabel("a token label has 1 to 32 bytes, \"\(tokenLabel)\" has \(tokenLabel.utf8.count)")
        }
        let slots = try module.slots(withTokenLabel: tokenLabel)
        guard let slot = slots.first else { throw PKCS11Error.tokenNotFound(label: tokenLabel) }
        guard slots.count == 1 else { throw PKCS11Error.ambiguousToken(label: tokenLabel, count: slots.count) }
        let openSession = try module.function(\.C_OpenSession, "C_OpenSession")
        let login = try module.function(\.C_Login, "C_Login")
        let closeSession = try module.function(\.C_CloseSession, "C_CloseSession")
        var handle: CK_SESSION_HANDLE = 0
        try checkRV(
            openSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &handle), "C_OpenSession")
        do {
            try module.library.withSessions { sessions in
                let rv = pin.withUnsafeBytes { pinBytes in
                    login(
                        handle, CK_USER_TYPE(CKU_USER),
                        UnsafeMutablePointer(mutating: pinBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                        CK_ULONG(pinBytes.count))
                }
                if rv != CK_RV(CKR_USER_ALREADY_LOGGED_IN) { try checkRV(rv, "C_Login") }
                sessions[slot, default: 0] += 1
            }
        } catch {
            _ = closeSession(handle)
            throw error
        }
        self.module = module
        self.tokenLabel = tokenLabel
        self.slot = slot
        self.handle = handle
    }

    deinit {
        try? close()
    }

    /// Logs out (if this is the token's last session in the process) and closes the session. Idempotent.
    public func close() throws {
        guard isOpen else { return }
        let logout = try module.function(\.C_Logout, "C_Logout")
        let closeSession = try module.function(\.C_CloseSession, "C_CloseSession")
        isOpen = false
        try module.library.withSessions { sessions in
            let remaining = (sessions[slot] ?? 1) - 1
            sessions[slot] = remaining == 0 ? nil : remaining
            var logoutRV = CK_RV(CKR_OK)
            if remaining == 0 {
                logoutRV = logout(handle)
                // Already logged out (e.g. the token was reset) is the state wanted.
                if logoutRV == CK_RV(CKR_USER_NOT_LOGGED_IN) { logoutRV = CK_RV(CKR_OK) }
            }
            let closeRV = closeSession(handle)
            try checkRV(logoutRV, "C_Logout")
            try checkRV(closeRV, "C_CloseSession")
        }
    }

    private func ensureOpen(_ function: String) throws {
        guard isOpen else { throw PKCS11Error.call(function: function, code: UInt(CKR_SESSION_CLOSED)) }
    }

    /// Counts one object or crypto call and checks its result.
    private func counted(_ function: String, _ call: () -> CK_RV) throws {
        try ensureOpen(function)
        objectCalls += 1
        try checkRV(call(), function)
    }

    // MARK: Objects

    /// Handles of all objects matching `template` (`C_FindObjectsInit`, `C_FindObjects`, `C_FindObjectsFinal`).
    public func findObjects(_ template: AttributeTemplate) throws -> [CK_OBJECT_HANDLE] {
        let findInit = try module.function(\.C_FindObjectsInit, "C_FindObjectsInit")
        let find = try module.function(\.C_FindObjects, "C_FindObjects")
        let findFinal = try module.function(\.C_FindObjectsFinal, "C_FindObjectsFinal")
        try template.withAttributes { attributes, count in
            try counted("C_FindObjectsInit") { findInit(handle, attributes, count) }
        }
        var found: [CK_OBJECT_HANDLE] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 64)
        var failure: Error?
        while true {
            var count: CK_ULONG = 0
            do {
                try counted("C_FindObjects") {
                    batch.withUnsafeMutableBufferPointer { find(handle, $0.baseAddress, CK_ULONG($0.count), &count) }
                }
            } catch {
                failure = error
                break
            }
            found.append(contentsOf: batch[0..<Int(count)])
            if Int(count) < batch.count { break }
        }
        // Always end the search, even after a failed C_FindObjects, so the session stays usable.
        do {
            try counted("C_FindObjectsFinal") { findFinal(handle) }
        } catch {
            if failure == nil { failure = error }
        }
        if let failure { throw failure }
        return found
    }

    /// The value of attribute `type` of `object` (`C_GetAttributeValue`, length first, then value).
    /// - Throws: `.call(function: "C_GetAttributeValue", code: CKR_ATTRIBUTE_SENSITIVE)` for a sensitive or
    ///   unextractable value, `CKR_ATTRIBUTE_TYPE_INVALID` for an attribute the object does not have.
    public func attributeValue(_ type: CK_ATTRIBUTE_TYPE, of object: CK_OBJECT_HANDLE) throws -> [UInt8] {
        let getAttribute = try module.function(\.C_GetAttributeValue, "C_GetAttributeValue")
        var attribute = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        try counted("C_GetAttributeValue") { getAttribute(handle, object, &attribute, 1) }
        // CK_UNAVAILABLE_INFORMATION comes with an error code, so a successful length is a real one.
        var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
        let length = attribute.ulValueLen
        try value.withUnsafeMutableBytes { buffer in
            attribute = CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: length)
            try counted("C_GetAttributeValue") { getAttribute(handle, object, &attribute, 1) }
        }
        guard attribute.ulValueLen <= length else {
            throw PKCS11Error.unexpectedResponse(function: "C_GetAttributeValue", detail: "value grew between calls")
        }
        return Array(value[0..<Int(attribute.ulValueLen)])
    }

    /// A secret attribute value (such as a derived secret's `CKA_VALUE`) read straight into `SecretBytes`.
    func secretAttributeValue(_ type: CK_ATTRIBUTE_TYPE, of object: CK_OBJECT_HANDLE, length: Int) throws
        -> SecretBytes
    {
        let getAttribute = try module.function(\.C_GetAttributeValue, "C_GetAttributeValue")
        let value = SecretBytes(count: length)
        var returned: CK_ULONG = 0
        try value.withUnsafeMutableBytes { buffer in
            var attribute = CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(length))
            try counted("C_GetAttributeValue") { getAttribute(handle, object, &attribute, 1) }
            returned = attribute.ulValueLen
        }
        guard returned == CK_ULONG(length) else {
            throw PKCS11Error.unexpectedResponse(
                function: "C_GetAttributeValue", detail: "expected a \(length)-byte value, got \(returned) bytes")
        }
        return value
    }

    /// A `CK_BBOOL` attribute.
    public func boolAttribute(_ type: CK_ATTRIBUTE_TYPE, of object: CK_OBJECT_HANDLE) throws -> Bool {
        let value = try attributeValue(type, of: object)
        guard value.count == MemoryLayout<CK_BBOOL>.size else {
            throw PKCS11Error.unexpectedResponse(
                function: "C_GetAttributeValue", detail: "a CK_BBOOL attribute of \(value.count) bytes")
        }
        return value[0] != 0
    }

    /// `C_GenerateKey` with `mechanism` (no parameter) and `template`.
    public func generateKey(mechanism: CK_MECHANISM_TYPE, template: AttributeTemplate) throws -> CK_OBJECT_HANDLE {
        let generateKey = try module.function(\.C_GenerateKey, "C_GenerateKey")
        var mechanismStruct = CK_MECHANISM(mechanism: mechanism, pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        try template.withAttributes { attributes, count in
            try counted("C_GenerateKey") { generateKey(handle, &mechanismStruct, attributes, count, &key) }
        }
        return key
    }

    /// `C_GenerateKeyPair` with `mechanism` (no parameter); returns (public key, private key).
    public func generateKeyPair(
        mechanism: CK_MECHANISM_TYPE, publicTemplate: AttributeTemplate, privateTemplate: AttributeTemplate
    ) throws -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let generateKeyPair = try module.function(\.C_GenerateKeyPair, "C_GenerateKeyPair")
        var mechanismStruct = CK_MECHANISM(mechanism: mechanism, pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        try publicTemplate.withAttributes { publicAttributes, publicCount in
            try privateTemplate.withAttributes { privateAttributes, privateCount in
                try counted("C_GenerateKeyPair") {
                    generateKeyPair(
                        handle, &mechanismStruct, publicAttributes, publicCount, privateAttributes, privateCount,
                        &publicKey, &privateKey)
                }
            }
        }
        return (publicKey, privateKey)
    }

    /// `C_CreateObject` with `template`.
    public func createObject(_ template: AttributeTemplate) throws -> CK_OBJECT_HANDLE {
        let createObject = try module.function(\.C_CreateObject, "C_CreateObject")
        var object: CK_OBJECT_HANDLE = 0
        try template.withAttributes { attributes, count in
            try counted("C_CreateObject") { createObject(handle, attributes, count, &object) }
        }
        return object
    }

    /// `C_DestroyObject`.
    public func destroyObject(_ object: CK_OBJECT_HANDLE) throws {
        let destroyObject = try module.function(\.C_DestroyObject, "C_DestroyObject")
        try counted("C_DestroyObject") { destroyObject(handle, object) }
    }

    /// `C_DeriveKey` with `mechanism` from `baseKey`.
    func deriveKey(
        mechanism: inout CK_MECHANISM, baseKey: CK_OBJECT_HANDLE, template: AttributeTemplate
    ) throws -> CK_OBJECT_HANDLE {
        let deriveKey = try module.function(\.C_DeriveKey, "C_DeriveKey")
        var key: CK_OBJECT_HANDLE = 0
        try template.withAttributes { attributes, count in
            try counted("C_DeriveKey") { deriveKey(handle, &mechanism, baseKey, attributes, count, &key) }
        }
        return key
    }

    // MARK: Crypto

    /// Single-part `C_EncryptInit` + `C_Encrypt` of `input` (`inputCount` bytes) into `output`; returns the
    /// number of bytes written.
    func encrypt(
        mechanism: inout CK_MECHANISM, key: CK_OBJECT_HANDLE, input: UnsafeRawBufferPointer,
        output: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        let encryptInit = try module.function(\.C_EncryptInit, "C_EncryptInit")
        let encrypt = try module.function(\.C_Encrypt, "C_Encrypt")
        try counted("C_EncryptInit") { encryptInit(handle, &mechanism, key) }
        var written = CK_ULONG(output.count)
        try counted("C_Encrypt") {
            encrypt(
                handle, UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self)),
                CK_ULONG(input.count), output.baseAddress?.assumingMemoryBound(to: UInt8.self), &written)
        }
        return Int(written)
    }

    /// Single-part `C_DecryptInit` + `C_Decrypt`; returns the number of bytes written to `output`.
    func decrypt(
        mechanism: inout CK_MECHANISM, key: CK_OBJECT_HANDLE, input: UnsafeRawBufferPointer,
        output: UnsafeMutableRawBufferPointer
    ) throws -> Int {
        let decryptInit = try module.function(\.C_DecryptInit, "C_DecryptInit")
        let decrypt = try module.function(\.C_Decrypt, "C_Decrypt")
        try counted("C_DecryptInit") { decryptInit(handle, &mechanism, key) }
        var written = CK_ULONG(output.count)
        try counted("C_Decrypt") {
            decrypt(
                handle, UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self)),
                CK_ULONG(input.count), output.baseAddress?.assumingMemoryBound(to: UInt8.self), &written)
        }
        return Int(written)
    }

    /// `count` bytes from the token's RNG (`C_GenerateRandom`).
    public func generateRandom(count: Int) throws -> [UInt8] {
        let generateRandom = try module.function(\.C_GenerateRandom, "C_GenerateRandom")
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            try counted("C_GenerateRandom") { generateRandom(handle, buffer.baseAddress, CK_ULONG(buffer.count)) }
        }
        return bytes
    }
}

/// A `CK_ATTRIBUTE` template whose values live in `SecretBytes` (zeroed when the template is released), so a
/// template may carry key material (`CKA_VALUE`) and the pointers stay valid for the template's lifetime.
public final class AttributeTemplate {
    private var values: [SecretBytes] = []
    private var types: [CK_ATTRIBUTE_TYPE] = []

    public init() {}

    /// Adds a `CK_BBOOL` attribute.
    @discardableResult
    public func add(_ type: CK_ATTRIBUTE_TYPE, _ value: Bool) -> Self {
        add(type, secret: SecretBytes(copying: [value ? UInt8(CK_TRUE) : UInt8(CK_FALSE)]))
    }

    /// Adds a `CK_ULONG` attribute (classes, key types, lengths).
    @discardableResult
    public func add(_ type: CK_ATTRIBUTE_TYPE, ulong value: CK_ULONG) -> Self {
        add(type, secret: withUnsafeBytes(of: value) { SecretBytes(copying: $0) })
    }

    /// Adds a byte-string attribute (labels, ids, DER parameters).
    @discardableResult
    public func add(_ type: CK_ATTRIBUTE_TYPE, bytes: [UInt8]) -> Self {
        add(type, secret: SecretBytes(copying: bytes))
    }

    /// Adds a UTF-8 string attribute (`CKA_LABEL`).
    @discardableResult
    public func add(_ type: CK_ATTRIBUTE_TYPE, string: String) -> Self {
        add(type, bytes: Array(string.utf8))
    }

    /// Adds a secret value; the template keeps its own copy.
    @discardableResult
    public func add(_ type: CK_ATTRIBUTE_TYPE, secret: SecretBytes) -> Self {
        let copy = secret.withUnsafeBytes { SecretBytes(copying: $0) }
        values.append(copy)
        types.append(type)
        return self
    }

    /// Calls `body` with the `CK_ATTRIBUTE` array and its count.
    func withAttributes<R>(_ body: (UnsafeMutablePointer<CK_ATTRIBUTE>?, CK_ULONG) throws -> R) rethrows -> R {
        var attributes: [CK_ATTRIBUTE] = []
        attributes.reserveCapacity(values.count)
        for (type, value) in zip(types, values) {
            // The buffer belongs to `value`, which this template keeps alive; the token only reads it.
            let pointer = value.withUnsafeMutableBytes { $0.baseAddress }
            attributes.append(CK_ATTRIBUTE(type: type, pValue: pointer, ulValueLen: CK_ULONG(value.count)))
        }
        return try attributes.withUnsafeMutableBufferPointer { try body($0.baseAddress, CK_ULONG($0.count)) }
    }
}
