#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto

/// The vault's trust record (vault-format.md §3.9): which master key the vault seals to and which job credentials
/// may sign for it, signed by the restore key. It lives in the vault (`VAULT/trust`); what pins it against a party
/// who can rewrite the vault directory is the job credential file outside the vault, which names the master key
/// it was issued under, and the restore key itself on the restore side.
public struct TrustRecord: Codable, Equatable, Sendable {
    public static let formatName = "shredvault-trust/v1"
    public struct Signer: Codable, Equatable, Sendable {
        public var keyId: String
        public var publicKey: String
        public var role: String
        public var addedAt: Int64
        public var revokedAt: Int64?
    }
    public var format: String
    public var vaultId: String
    public var masterKey: String
    public var masterKeyId: String
    public var signers: [Signer]
    /// Increases with every re-signing (a credential added or revoked).
    public var serial: Int64
    public var signedAt: Int64
    /// The first audit record that signed heads cover (§6.2): every record from it on must be covered. Absent in a
    /// record signed before audit heads existed (then the vault's first head marks the start).
    public var auditSignedFrom: Int64?

    public var activeSigners: [Signer] { signers.filter { $0.revokedAt == nil } }
}

/// `VAULT/trust`: the record's exact JSON text and the restore key's ECDSA signature over
/// `"shredvault.org/trust@v1" ‖ 0x00 ‖ record text`.
struct TrustFile: Codable {
    var record: String
    var signature: String

    static let context = Array("shredvault.org/trust@v1".utf8) + [0]

    /// Why a trust file was not accepted.
    enum Problem: Error {
        /// Not `{"record": TEXT, "signature": HEX}`.
        case notATrustFile
        /// The signature does not verify with the expected master key (or, offline, with the one the record names).
        case badSignature
        /// The signed text is not a trust record of this format, or its master key id is not the id of its master key.
        case notARecord
        /// The record names another master key than the expected one.
        case otherMasterKey
    }

    /// Decodes the text of a trust file and checks it (§3.9): the restore key's signature verifies with `master` (the
    /// vault's master.pub) or, when `master` is nil (offline verification, §6.3), with the master key the record itself
    /// names; the record has this format, names that master key, and its master key id is that key's id. The one
    /// check that `loadTrust` and `receipt verify` share.
    static func verify(_ text: String, master: P256PublicKey?) -> Result<TrustRecord, Problem> {
        guard let file = try? JSONDecoder().decode(TrustFile.self, from: Data(text.utf8)) else { return .failure(.notATrustFile) }
        let signed = TrustFile.context + Array(file.record.utf8)
        // With the vault's key the signature is checked before the record is even parsed.
        if let master, !(Hex.decode(file.signature).map { ECDSAP256.verify($0, message: signed, publicKey: master) } ?? false) {
            return .failure(.badSignature)
        }
        guard let record = try? JSONDecoder().decode(TrustRecord.self, from: Data(file.record.utf8)), record.format == TrustRecord.formatName,
              let named = Hex.decode(record.masterKey).flatMap({ try? P256PublicKey(x963Representation: $0) }),
              let namedId = try? KeyHierarchy.keyId(named), Hex.encode(namedId) == record.masterKeyId else {
            return .failure(.notARecord)
        }
        if let master {
            guard named == master else { return .failure(.otherMasterKey) }
        } else if !(Hex.decode(file.signature).map { ECDSAP256.verify($0, message: signed, publicKey: named) } ?? false) {
            return .failure(.badSignature)
        }
        return .success(record)
    }
}

/// A job credential (vault-format.md §3.9): a P-256 signing key in a 0600 file outside the vault,
/// `shredvault-job-key-v1:<vault id>:<master key id>:<64 hex>`; the ids pin it to one vault and one master key.
public struct JobCredential {
    public let key: P256PrivateKey
    public var keyId: String { Hex.encode((try? KeyHierarchy.keyId(key.publicKey)) ?? []) }

    static func prefix(vaultId: String, masterKeyId: String) -> String { "shredvault-job-key-v1:\(vaultId):\(masterKeyId):" }

    /// Reads the credential, which must have been issued for this vault and this master key.
    static func read(_ path: String, vaultId: String, masterKeyId: String) throws -> JobCredential {
        let raw = try readSecretFile(path, maxLength: 512)
        let expected = prefix(vaultId: vaultId, masterKeyId: masterKeyId)
        let scalar: SecretBytes
        do {
            scalar = try raw.withUnsafeBytes { try SecretKeyText.decode($0, prefix: Array(expected.utf8), count: 32) }
        } catch SecretKeyText.Problem.shape {
            let head = raw.withUnsafeBytes { String(decoding: $0.prefix(while: { $0 != 0x0a }).prefix(expected.count), as: UTF8.self) }
            if head.hasPrefix("shredvault-job-key-v1:") {
                throw VaultError.bundleMismatch(path: path, reason: "this job credential was issued for vault/master key \(head.dropFirst(22).dropLast()), not for this vault's master key \(masterKeyId): master.pub or the trust record was replaced, or the credential belongs to another vault")
            }
            throw VaultError.keyFile(path: path, reason: "is not a ShredVault job credential (expected one line '\(expected)<64 hex>')")
        } catch {
            throw VaultError.keyFile(path: path, reason: SecretKeyText.reason(error))
        }
        do { return JobCredential(key: try P256PrivateKey(rawScalar: scalar)) } catch {
            throw VaultError.keyFile(path: path, reason: "does not hold a valid P-256 private key")
        }
    }

    /// Creates a new credential file (mode 0600, never overwriting).
    static func create(_ path: String, vaultId: String, masterKeyId: String) throws -> JobCredential {
        let key = try P256PrivateKey.generate()
        try SecretKeyText.writeNewFile(path, SecretKeyText.encode(try key.rawScalar(), prefix: Array(prefix(vaultId: vaultId, masterKeyId: masterKeyId).utf8)))
        return JobCredential(key: key)
    }
}

extension Vault {
    static func trustPath(_ root: String) -> String { root + "/trust" }

    /// Reads `VAULT/trust` and checks it: the restore key's signature verifies with `master`, and the record names
    /// this vault and this master key. Nil when the vault has no trust record yet (made before §3.9).
    static func loadTrust(root: String, vaultId: String, master: P256PublicKey) throws -> TrustRecord? {
        let path = trustPath(root)
        guard Posix.exists(path) else { return nil }
        switch TrustFile.verify(try Posix.readTextFile(path, maxLength: 1 << 20), master: master) {
        case .failure(.notATrustFile):
            throw VaultError.bundleMismatch(path: path, reason: "is not a ShredVault trust record")
        case .failure(.badSignature):
            throw VaultError.bundleMismatch(path: path, reason: "its signature does not verify with master.pub: master.pub or the trust record was replaced; no job runs until the restore-key holder checks the vault")
        case .failure(.notARecord):
            throw VaultError.bundleMismatch(path: path, reason: "its signed record is not a trust record")
        case .failure(.otherMasterKey):
            throw VaultError.bundleMismatch(path: path, reason: "it names another vault or master key")
        case .success(let record):
            guard record.vaultId == vaultId else { throw VaultError.bundleMismatch(path: path, reason: "it names another vault or master key") }
            return record
        }
    }

    /// Signs and writes a trust record with the restore key (atomic replace).
    static func writeTrust(_ record: TrustRecord, root: String, restoreKey: P256PrivateKey) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(record), as: UTF8.self)
        let signature = try ECDSAP256.sign(TrustFile.context + Array(text.utf8), with: restoreKey)
        let file = TrustFile(record: text, signature: Hex.encode(signature))
        try Posix.writeFileAtomically(trustPath(root), Array(try encoder.encode(file)) + [0x0a], mode: 0o644)
    }

    static func defaultJobKeyPath(keyringPath: String, vaultId: String) -> String {
        Posix.directoryName(keyringPath) + "/shredvault-job-" + vaultId.prefix(8) + ".key"
    }

    /// Creates (or re-signs) the trust record with the restore key, issuing a new job credential at `jobKeyPath` and
    /// revoking the active ones (rotation). Used by `init` and `trust init|rotate`.
    /// - Parameter auditSignedFrom: the first audit record signed heads cover (§6.2): 1 for a new vault, the next
    ///   record for a vault that gets its first trust record; a rotation keeps the previous record's value.
    static func issueTrust(root: String, config: VaultConfig, restoreKey: P256PrivateKey, jobKeyPath: String, previous: TrustRecord?,
                           auditSignedFrom: Int64? = nil, now: Int64) throws -> TrustRecord {
        let masterKeyId = Hex.encode(try KeyHierarchy.keyId(restoreKey.publicKey))
        let credential = try JobCredential.create(jobKeyPath, vaultId: config.vaultId, masterKeyId: masterKeyId)
        var signers = previous?.signers ?? []
        for i in signers.indices where signers[i].revokedAt == nil { signers[i].revokedAt = now }
        signers.append(.init(keyId: credential.keyId, publicKey: Hex.encode(credential.key.publicKey.x963Representation), role: "job",
                             addedAt: now, revokedAt: nil))
        let record = TrustRecord(format: TrustRecord.formatName, vaultId: config.vaultId, masterKey: Hex.encode(restoreKey.publicKey.x963Representation),
                                 masterKeyId: masterKeyId, signers: signers, serial: (previous?.serial ?? 0) + 1, signedAt: now,
                                 auditSignedFrom: previous?.auditSignedFrom ?? auditSignedFrom)
        try writeTrust(record, root: root, restoreKey: restoreKey)
        return record
    }
}

/// What `trust init` and `trust rotate` did.
public struct TrustReport: Sendable, Codable {
    public var serial: Int64
    public var masterKeyId: String
    public var jobKeyPath: String
    public var jobKeyId: String
    public var revoked: [String]
    /// `trust init`: live bundles the restore key endorsed (§3.10).
    public var endorsedBundles = 0
}

extension Vault {
    /// Issues a job credential and (re-)signs the trust record with the restore key (§3.9): `trust init` for a vault
    /// made before trust records (refused if one exists), `trust rotate` to replace a lost or suspect credential (the
    /// active ones are revoked). The vault must be opened with `trustAdministration`.
    public func issueJobCredential(restoreKey: P256PrivateKey, jobKeyPath requested: String?, rotate: Bool, now: Int64) throws -> TrustReport {
        guard restoreKey.publicKey == archiveKey else { throw VaultError.wrongRestoreKey }
        try admitClock(now: now)
        if rotate {
            guard trust != nil else { throw VaultError.invalidArgument("the vault has no trust record yet: run `shredvault trust init`") }
        } else if trust != nil {
            throw VaultError.invalidArgument("the vault already has a trust record (serial \(trust!.serial)); `shredvault trust rotate` replaces its job credential")
        }
        let keyring = config.keyringPath ?? root
        var path = requested ?? Self.defaultJobKeyPath(keyringPath: keyring, vaultId: config.vaultId)
        if requested == nil, Posix.exists(path) { path += "-\((trust?.serial ?? 0) + 1)" }
        if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
        if path.hasPrefix(root + "/") { throw VaultError.invalidArgument("the job credential must live outside the vault directory") }
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        administrativeSigner = try VaultSigner(restoreKey)
        // Upgrade (§3.10): the restore-key holder endorses every live bundle before the record exists, so a crash
        // in between leaves a vault that `trust init` simply upgrades again.
        let endorsed = rotate ? 0 : try endorseLiveBundles(restoreKey: restoreKey)
        // From the record this job appends on, every audit record is covered by a signed head (§6.2).
        let nextRecord = try catalog.read { db in try Catalog.lastAuditSeq(db) } + 1
        let record = try Self.issueTrust(root: root, config: config, restoreKey: restoreKey, jobKeyPath: path, previous: trust,
                                         auditSignedFrom: nextRecord, now: now)
        config.jobKeyPath = path
        try Self.writeConfig(config, root: root)
        let revoked = record.signers.filter { $0.revokedAt == now }.map(\.keyId)
        let issued = record.activeSigners.last!
        try catalog.write { db in
            var detail = ["serial": String(record.serial), "jobKey": issued.keyId, "revoked": revoked.joined(separator: ",")]
            if !rotate { detail["endorsed"] = String(endorsed) }
            try Catalog.audit(db, at: now, action: rotate ? "trust-rotate" : "trust-init", user: nil, detail: detail)
        }
        return TrustReport(serial: record.serial, masterKeyId: record.masterKeyId, jobKeyPath: path, jobKeyId: issued.keyId, revoked: revoked,
                           endorsedBundles: endorsed)
    }

    /// Signs, with the restore key, the bundle and seal statements of every live bundle (of a vault made
    /// before signed objects, §3.10), after checking its file against the catalog and opening its DEK. Returns how
    /// many were endorsed.
    func endorseLiveBundles(restoreKey: P256PrivateKey) throws -> Int {
        let signer = try VaultSigner(restoreKey)
        let live = try catalog.read { db in
            try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY expiry_day, id")
        }
        let cache = PrivateKeyCache()
        var endorsed: [BundleRecord] = []
        for var b in live {
            let path = try checkBundleFile(b)
            defer { discardFetched(path) }
            guard let role = b.outerRole.flatMap(KeyRole.init(rawValue:)), let keyId = b.outerKeyId, let sealed = b.sealedDek, let sha = b.sha256 else {
                throw VaultError.bundleMismatch(path: path, reason: "its catalog row has no sealed data key")
            }
            let binding = try b.binding(vaultId: vaultId)
            let inner = try KeyHierarchy.openOuter(Array(sealed), binding: binding, role: role,
                                                   outerKey: try privateKey(role: role, id: keyId, restoreKey: restoreKey, user: b.userId, cache: cache))
            _ = try KeyHierarchy.openInner(inner, binding: binding,
                                           userKey: try privateKey(role: .user, id: b.userKeyId, restoreKey: restoreKey, user: b.userId, cache: cache))
            let innerSHA256 = try SHA256.hash(inner.withUnsafeBytes { Array($0) })
            let prefix = try BundleReader.readSignedPrefix(path: path).prefix
            b.innerSha256 = Data(innerSHA256)
            b.bundleSig = Data(try signer.sign(.bundle, BundleStatement.bundle(prefix: prefix, size: b.size, fileSHA256: Array(sha),
                                                                              innerSHA256: innerSHA256)).encoded)
            b.sealSig = Data(try signer.sign(.seal, sealBody(bundleId: b.id, role: role, outerKeyId: Array(keyId), expiryDay: b.expiryDay,
                                                             outer: Array(sealed))).encoded)
            try writeSidecar(bundleLocation: b.location, b.sidecar!)
            endorsed.append(b)
        }
        try catalog.write { db in
            for b in endorsed {
                try db.execute(sql: "UPDATE bundles SET inner_sha256 = ?, bundle_sig = ?, seal_sig = ? WHERE id = ?",
                               arguments: [b.innerSha256, b.bundleSig, b.sealSig, b.id])
            }
        }
        return endorsed.count
    }
}
