import Foundation
import VaultCrypto

/// A signature by a party of the vault's trust record (vault-format.md §3.10): `signer key id (16) ‖ r (32) ‖ s (32)`,
/// ECDSA P-256 / SHA-256 over `context ‖ 0x00 ‖ body`, where the context names the kind of object signed.
public struct VaultSignature: Equatable, Sendable {
    public static let length = 16 + ECDSAP256.rawSignatureSize
    public var signerKeyId: [UInt8]
    public var rs: [UInt8]

    public var encoded: [UInt8] { signerKeyId + rs }
    public var signerHex: String { Hex.encode(signerKeyId) }

    public init(signerKeyId: [UInt8], rs: [UInt8]) {
        self.signerKeyId = signerKeyId
        self.rs = rs
    }

    public init?(_ bytes: [UInt8]) {
        guard bytes.count == Self.length else { return nil }
        signerKeyId = Array(bytes[0..<16])
        rs = Array(bytes[16...])
    }

    public init?(_ data: Data?) {
        guard let data else { return nil }
        self.init(Array(data))
    }

    public init?(hex: String?) {
        guard let hex, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes)
    }
}

/// What a signature covers; the context string is the first part of the signed message (§3.10).
public enum SignedObject: String, Sendable, CaseIterable {
    /// A bundle as archive wrote it: its first bytes, size, SHA-256 and the hash of its inner sealed DEK.
    case bundle = "shredvault.org/bundle@v1"
    /// A bundle's current outer seal (archive, and every hold reseal).
    case seal = "shredvault.org/seal@v1"
    /// The audit chain's head after a job extended it.
    case auditHead = "shredvault.org/audit-head@v1"
    /// A completed deletion request.
    case receipt = "shredvault.org/receipt@v1"

    func message(_ body: [UInt8]) -> [UInt8] { Array(rawValue.utf8) + [0] + body }
}

/// A key that signs for the vault: a job credential, or the restore key in a job run by its holder.
struct VaultSigner {
    let key: P256PrivateKey
    let keyId: [UInt8]

    init(_ key: P256PrivateKey) throws {
        self.key = key
        keyId = try KeyHierarchy.keyId(key.publicKey)
    }

    func sign(_ object: SignedObject, _ body: [UInt8]) throws -> VaultSignature {
        VaultSignature(signerKeyId: keyId, rs: try ECDSAP256.signRaw(object.message(body), with: key))
    }
}

/// Why a signature was not accepted.
public enum SignatureProblem: Error, Equatable, Sendable, CustomStringConvertible {
    case missing
    case unknownSigner(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .missing: return "it carries no signature"
        case .unknownSigner(let id): return "its signer \(id) is not in the vault's trust record"
        case .invalid(let id): return "its signature by \(id) does not verify"
        }
    }
}

extension TrustRecord {
    /// The public key of a party that may sign for the vault: the master key (restore-key holder) or a job credential
    /// the record lists. A revoked credential's signatures stay valid: it signed while it was active, and revocation
    /// stops it from opening the vault (what a stolen credential signed cannot be told apart, §3.10).
    func signerKey(_ keyId: [UInt8]) -> Result<P256PublicKey, SignatureProblem> {
        let hex = Hex.encode(keyId)
        if hex == masterKeyId, let bytes = Hex.decode(masterKey), let key = try? P256PublicKey(x963Representation: bytes) {
            return .success(key)
        }
        guard let signer = signers.first(where: { $0.keyId == hex }),
              let bytes = Hex.decode(signer.publicKey), let key = try? P256PublicKey(x963Representation: bytes) else {
            return .failure(.unknownSigner(hex))
        }
        return .success(key)
    }

    /// Nil when `signature` is a valid signature of `body` as `object` by a party of this record.
    public func problem(with signature: VaultSignature?, object: SignedObject, body: [UInt8]) -> SignatureProblem? {
        guard let signature else { return .missing }
        switch signerKey(signature.signerKeyId) {
        case .failure(let problem): return problem
        case .success(let key):
            return ECDSAP256.verifyRaw(signature.rs, message: object.message(body), publicKey: key) ? nil : .invalid(signature.signerHex)
        }
    }
}

/// The signed statements about a bundle (§3.10).
enum BundleStatement {
    /// `be16(|prefix|) ‖ prefix ‖ be64(size) ‖ sha256(file) ‖ SHA-256(inner)`, where prefix = header ‖ salt ‖
    /// commitment (the bundle's first header-length + 56 bytes) and inner is the DEK sealed to the user key (§3.4),
    /// which no reseal changes.
    static func bundle(prefix: [UInt8], size: Int64, fileSHA256: [UInt8], innerSHA256: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(UInt16(prefix.count))
        out += prefix
        out.appendBigEndian(UInt64(bitPattern: size))
        return out + fileSHA256 + innerSHA256
    }

    /// `vault_id ‖ bundle_id ‖ role (1 day, 2 hold) ‖ outer_key_id ‖ be32(expiry day) ‖ outer`: the current outer
    /// seal of a bundle and the expiry day the catalog files it under.
    static func seal(vaultId: [UInt8], bundleId: [UInt8], role: KeyRole, outerKeyId: [UInt8], expiryDay: Int, outer: [UInt8]) -> [UInt8] {
        var out = vaultId + bundleId + [role == .hold ? 2 : 1] + outerKeyId
        out.appendBigEndian(UInt32(truncatingIfNeeded: expiryDay))
        return out + outer
    }
}

extension Vault {
    /// The key this job signs with (§3.10): its job credential, or the restore key when its holder runs the job
    /// (`trust init|rotate`). Nil in a vault without a trust record.
    var signer: VaultSigner? {
        if let administrativeSigner { return administrativeSigner }
        guard trust != nil, let jobCredential else { return nil }
        return try? VaultSigner(jobCredential.key)
    }

    /// Signs an audit head (§6.2) in the transaction that appends its records: with the job credential, or with the
    /// restore key in `trust init|rotate` (also for the record of the `trust init` that gives the vault its first
    /// trust record, which this job's `trust` does not show yet). Nil in a vault without a trust record.
    func signAuditHead(_ body: [UInt8]) throws -> VaultSignature? {
        if let administrativeSigner { return try administrativeSigner.sign(.auditHead, body) }
        return try sign(.auditHead, body)
    }

    /// Signs `body` as `object` for this vault; nil in a vault without a trust record (made before §3.9, until
    /// `trust init`).
    func sign(_ object: SignedObject, _ body: [UInt8]) throws -> VaultSignature? {
        guard trust != nil else { return nil }
        guard let signer else {
            throw VaultError.keyFile(path: Self.trustPath(root), reason: "this job must sign what it writes but holds no job credential")
        }
        return try signer.sign(object, body)
    }
}

extension BundleRecord {
    /// The provenance a signed row carries (§3.10); nil in a row written before the trust record.
    var provenance: DEKSidecar.Provenance? {
        guard let inner = innerSha256, inner.count == 32, let bundle = VaultSignature(bundleSig), let seal = VaultSignature(sealSig) else { return nil }
        return .init(innerSHA256: Array(inner), bundleSignature: bundle, sealSignature: seal)
    }

    /// The sidecar that mirrors this row's current seal and provenance.
    var sidecar: DEKSidecar? {
        guard let role = outerRole.flatMap(KeyRole.init(rawValue:)), let keyId = outerKeyId, let sealed = sealedDek else { return nil }
        return DEKSidecar(outerRole: role, outerKeyId: Array(keyId), sealedDEK: Array(sealed), provenance: provenance)
    }
}

extension Vault {
    /// Refuses a job that must not run in a vault without a trust record (§3.10): `archive` would seal to whatever
    /// `master.pub` says; `hold`, `restore` and `check --read-data` could not tell a genuine bundle from a forged one.
    func requireTrust(_ job: String) throws {
        guard trust == nil else { return }
        throw VaultError.notGenuine(subject: "the vault \(root)", reason: "it has no signed trust record, so `\(job)` cannot tell what this vault's jobs made (G8); the restore-key holder upgrades it once with `shredvault trust init` (vault-format.md §3.10)")
    }

    /// The body of a seal statement for a bundle's current outer seal.
    func sealBody(bundleId: String, role: KeyRole, outerKeyId: [UInt8], expiryDay: Int64, outer: [UInt8]) -> [UInt8] {
        BundleStatement.seal(vaultId: vaultId, bundleId: Hex.decode(bundleId) ?? [], role: role, outerKeyId: outerKeyId,
                             expiryDay: Int(expiryDay), outer: outer)
    }

    /// Verifies a live row's seal and bundle signatures against the trust record, with `prefix` (header ‖ salt ‖
    /// commitment) read from its bundle file. Throws `notGenuine` naming the bundle.
    func verifyProvenance(_ b: BundleRecord, prefix: [UInt8]) throws {
        guard let trust else { return }
        let subject = "bundle \(b.id) of \(b.userId) (\(b.location))"
        guard let provenance = b.provenance, let role = b.outerRole.flatMap(KeyRole.init(rawValue:)), let keyId = b.outerKeyId,
              let sealed = b.sealedDek, let sha = b.sha256 else {
            throw VaultError.notGenuine(subject: subject, reason: "its catalog row carries no signatures")
        }
        if let problem = trust.problem(with: provenance.sealSignature, object: .seal,
                                       body: sealBody(bundleId: b.id, role: role, outerKeyId: Array(keyId), expiryDay: b.expiryDay, outer: Array(sealed))) {
            throw VaultError.notGenuine(subject: subject, reason: "its sealed data key: \(problem)")
        }
        let body = BundleStatement.bundle(prefix: prefix, size: b.size, fileSHA256: Array(sha), innerSHA256: provenance.innerSHA256)
        if let problem = trust.problem(with: provenance.bundleSignature, object: .bundle, body: body) {
            throw VaultError.notGenuine(subject: subject, reason: "its bundle file: \(problem)")
        }
    }

    /// Checks an inner sealed DEK against the hash the bundle signature binds (after `verifyProvenance`).
    func verifyInner(_ b: BundleRecord, _ inner: SecretBytes) throws {
        guard trust != nil else { return }
        let digest = try SHA256.hash(inner.withUnsafeBytes { Array($0) })
        guard let expected = b.innerSha256, constantTimeEquals(Array(expected), digest) else {
            throw VaultError.notGenuine(subject: "bundle \(b.id) of \(b.userId) (\(b.location))",
                                        reason: "its sealed data key opens to an inner key the bundle signature does not name")
        }
    }

    /// Opens a live bundle's DEK, checking the inner layer against its signed hash (§3.10).
    func openBundleKey(_ b: BundleRecord, role: KeyRole, outerKey: P256PrivateKey, userKey: P256PrivateKey) throws -> SecretBytes {
        let binding = try b.binding(vaultId: vaultId)
        let inner = try KeyHierarchy.openOuter(Array(b.sealedDek!), binding: binding, role: role, outerKey: outerKey)
        try verifyInner(b, inner)
        return try KeyHierarchy.openInner(inner, binding: binding, userKey: userKey)
    }
}
