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

    public var activeSigners: [Signer] { signers.filter { $0.revokedAt == nil } }
}

/// `VAULT/trust`: the record's exact JSON text and the restore key's ECDSA signature over
/// `"shredvault.org/trust@v1" ‖ 0x00 ‖ record text`.
struct TrustFile: Codable {
    var record: String
    var signature: String

    static let context = Array("shredvault.org/trust@v1".utf8) + [0]
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
            throw VaultError.keyFile(path: path, reason: "contains a character that is not hexadecimal")
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
        let file: TrustFile
        do { file = try JSONDecoder().decode(TrustFile.self, from: Data(try Posix.readTextFile(path, maxLength: 1 << 20).utf8)) } catch let e as VaultError {
            throw e
        } catch {
            throw VaultError.bundleMismatch(path: path, reason: "is not a ShredVault trust record")
        }
        guard let signature = Hex.decode(file.signature),
              ECDSAP256.verify(signature, message: TrustFile.context + Array(file.record.utf8), publicKey: master) else {
            throw VaultError.bundleMismatch(path: path, reason: "its signature does not verify with master.pub: master.pub or the trust record was replaced; no job runs until the restore-key holder checks the vault")
        }
        let record: TrustRecord
        do { record = try JSONDecoder().decode(TrustRecord.self, from: Data(file.record.utf8)) } catch {
            throw VaultError.bundleMismatch(path: path, reason: "its signed record is not a trust record")
        }
        guard record.format == TrustRecord.formatName, record.vaultId == vaultId, record.masterKey == Hex.encode(master.x963Representation) else {
            throw VaultError.bundleMismatch(path: path, reason: "it names another vault or master key")
        }
        return record
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
    static func issueTrust(root: String, config: VaultConfig, restoreKey: P256PrivateKey, jobKeyPath: String, previous: TrustRecord?,
                           now: Int64) throws -> TrustRecord {
        let masterKeyId = Hex.encode(try KeyHierarchy.keyId(restoreKey.publicKey))
        let credential = try JobCredential.create(jobKeyPath, vaultId: config.vaultId, masterKeyId: masterKeyId)
        var signers = previous?.signers ?? []
        for i in signers.indices where signers[i].revokedAt == nil { signers[i].revokedAt = now }
        signers.append(.init(keyId: credential.keyId, publicKey: Hex.encode(credential.key.publicKey.x963Representation), role: "job",
                             addedAt: now, revokedAt: nil))
        let record = TrustRecord(format: TrustRecord.formatName, vaultId: config.vaultId, masterKey: Hex.encode(restoreKey.publicKey.x963Representation),
                                 masterKeyId: masterKeyId, signers: signers, serial: (previous?.serial ?? 0) + 1, signedAt: now)
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
        let record = try Self.issueTrust(root: root, config: config, restoreKey: restoreKey, jobKeyPath: path, previous: trust, now: now)
        config.jobKeyPath = path
        try Self.writeConfig(config, root: root)
        let revoked = record.signers.filter { $0.revokedAt == now }.map(\.keyId)
        let issued = record.activeSigners.last!
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: rotate ? "trust-rotate" : "trust-init", user: nil, detail: [
                "serial": String(record.serial), "jobKey": issued.keyId, "revoked": revoked.joined(separator: ","),
            ])
        }
        return TrustReport(serial: record.serial, masterKeyId: record.masterKeyId, jobKeyPath: path, jobKeyId: issued.keyId, revoked: revoked)
    }
}
