import Foundation
import VaultCrypto

/// A deletion receipt (vault-format.md §6.3): the vault's signed statement that a deletion request was completed —
/// when it was received and due, when it completed, which user keys were destroyed for it and under which
/// destruction-root generation, and where the audit chain stood. Its text is canonical JSON (sorted keys, no
/// whitespace, `CanonicalJSON` strings); the signature (§3.10, context `shredvault.org/receipt@v1`) covers exactly
/// that text. It holds no personal data beyond the user id, which the audit log holds too.
public struct DeletionReceipt: Codable, Equatable, Sendable {
    public static let formatName = "shredvault-receipt/v1"

    /// An audit record: its sequence number and hash (§6).
    public struct AuditHead: Codable, Equatable, Sendable {
        public var seq: Int64
        public var hash: String
    }

    public var format: String
    public var vaultId: String
    /// The master key of the trust record the signer belongs to.
    public var masterKeyId: String
    public var requestId: String
    public var userId: String
    /// When the request was received (RFC 3339, UTC) and the day it was due (YYYY-MM-DD).
    public var received: String
    public var deadline: String
    /// When the request completed, and when this receipt was signed: the same instant unless the receipt was
    /// issued late (a vault that completed the request before it could sign, §6.3).
    public var completed: String
    public var issued: String
    /// The completion day is on or before the deadline.
    public var onTime: Bool
    /// Key ids of the user keys destroyed for this request (empty when the user had been deleted already).
    public var destroyedKeys: [String]
    /// The earlier request whose completion deleted the user, when this one found the user deleted already.
    public var alreadyDeletedBy: String?
    /// The only destruction-root generation left when the receipt was issued (§3.7): the destroyed keys were never
    /// wrapped under it, and every generation that could open an older copy of them was destroyed. Nil in a vault
    /// without a destruction root.
    public var rootGeneration: UInt64?
    /// The audit chain's last record when the receipt was issued, in the same transaction (§6.3).
    public var auditHead: AuditHead

    /// The canonical text: what is signed, stored and exported.
    public var text: String {
        let s = CanonicalJSON.string
        return CanonicalJSON.object([
            ("format", s(format)), ("vaultId", s(vaultId)), ("masterKeyId", s(masterKeyId)), ("requestId", s(requestId)),
            ("userId", s(userId)), ("received", s(received)), ("deadline", s(deadline)), ("completed", s(completed)),
            ("issued", s(issued)), ("onTime", onTime ? "true" : "false"),
            ("destroyedKeys", "[" + destroyedKeys.map(s).joined(separator: ",") + "]"),
            ("alreadyDeletedBy", alreadyDeletedBy.map(s) ?? "null"), ("rootGeneration", rootGeneration.map { String($0) } ?? "null"),
            ("auditHead", CanonicalJSON.object([("seq", String(auditHead.seq)), ("hash", s(auditHead.hash))])),
        ])
    }

    /// Parses a receipt text: it must be the canonical encoding of a well-formed receipt of this format.
    /// Returns why not otherwise.
    static func parse(_ text: String) -> Result<DeletionReceipt, ReceiptRejection> {
        guard let receipt = try? JSONDecoder().decode(DeletionReceipt.self, from: Data(text.utf8)) else {
            return .failure("its signed text is not a deletion receipt")
        }
        guard receipt.format == formatName else {
            return .failure("its format is '\(receipt.format)', not \(formatName); a newer shredvault may read it")
        }
        func isHex(_ s: String, _ bytes: Int) -> Bool { s.utf8.count == 2 * bytes && Hex.decode(s).map(Hex.encode) == s }
        func isTime(_ s: String) -> Bool { Timestamp.parse(s).map(Timestamp.format) == s }
        guard isHex(receipt.vaultId, 16), isHex(receipt.masterKeyId, 16), receipt.destroyedKeys.allSatisfy({ isHex($0, 16) }),
              isHex(receipt.auditHead.hash, 32), receipt.auditHead.seq >= 1,
              isTime(receipt.received), isTime(receipt.completed), isTime(receipt.issued),
              let deadline = CivilDay(iso: receipt.deadline), deadline.iso == receipt.deadline,
              receipt.destroyedKeys.isEmpty || receipt.alreadyDeletedBy == nil else {
            return .failure("its signed text has a malformed field")
        }
        guard receipt.onTime == (CivilDay(unixSeconds: Timestamp.parse(receipt.completed)!) <= deadline) else {
            return .failure("its on-time flag contradicts its completion time and deadline")
        }
        guard receipt.text == text else { return .failure("its signed text is not in canonical form") }
        return .success(receipt)
    }

    /// Parses a receipt's canonical text, without checking who signed it (`verifyReceipt` does); nil if it is not one.
    public init?(text: String) {
        guard case .success(let receipt) = Self.parse(text) else { return nil }
        self = receipt
    }

    /// Builds the receipt of a completed request.
    init(vaultId: String, masterKeyId: String, request: DeletionRequestRecord, issuedAt: Int64, destroyedKeys: [String],
         alreadyDeletedBy: String?, rootGeneration: UInt64?, auditHead: AuditHead) {
        let completed = request.completedAt ?? issuedAt
        format = Self.formatName
        self.vaultId = vaultId
        self.masterKeyId = masterKeyId
        requestId = request.requestId
        userId = request.userId
        received = Timestamp.format(request.receivedAt)
        deadline = CivilDay(daysSinceEpoch: request.deadlineDay).iso
        self.completed = Timestamp.format(completed)
        issued = Timestamp.format(issuedAt)
        onTime = CivilDay(unixSeconds: completed).daysSinceEpoch <= request.deadlineDay
        self.destroyedKeys = destroyedKeys
        self.alreadyDeletedBy = alreadyDeletedBy
        self.rootGeneration = rootGeneration
        self.auditHead = auditHead
    }
}

/// Why a receipt was refused: one line for the user.
struct ReceiptRejection: Error, Equatable, ExpressibleByStringInterpolation {
    var reason: String
    init(stringLiteral value: String) { reason = value }
}

/// The file `receipt export` writes and `receipt verify` reads (§6.3): `{"receipt":TEXT,"signature":HEX}` and a
/// newline, TEXT the receipt's canonical text and HEX the 80-byte signature (§3.10) in lower-case hex. Only that exact
/// encoding is accepted, so any change to any byte of the file is refused.
public struct ReceiptFile: Equatable, Sendable {
    public var text: String
    public var signature: VaultSignature

    public init(text: String, signature: VaultSignature) {
        self.text = text
        self.signature = signature
    }

    public var encoded: [UInt8] {
        Array(CanonicalJSON.object([("receipt", CanonicalJSON.string(text)), ("signature", CanonicalJSON.string(Hex.encode(signature.encoded)))]).utf8) + [0x0a]
    }

    private struct Wire: Decodable {
        var receipt: String
        var signature: String
    }

    /// Decodes a receipt file; nil unless `bytes` is exactly the encoding of one (the final newline may be missing).
    public static func decode(_ bytes: [UInt8]) -> ReceiptFile? {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(bytes)), let signature = VaultSignature(hex: wire.signature) else { return nil }
        let file = ReceiptFile(text: wire.receipt, signature: signature)
        let canonical = file.encoded
        return bytes == canonical || bytes == Array(canonical.dropLast()) ? file : nil
    }
}

/// What verifying a receipt established.
public struct ReceiptVerification: Codable, Equatable, Sendable {
    public var receipt: DeletionReceipt
    /// The key that signed it, and whether that is a job credential of the trust record or its master key.
    public var signerKeyId: String
    public var signerRole: String
    /// The trust record it was checked against (§3.9).
    public var trustSerial: Int64
    public var masterKeyId: String
}

extension TrustRecord {
    /// Checks a receipt's text and signature against this record (§6.3): signed as a receipt by its master key or a
    /// job credential it lists (a revoked credential only if it signed before its revocation), issued by this vault
    /// under this master key, and well formed. Returns why not otherwise.
    func verifyReceipt(text: String, signature: VaultSignature) -> Result<ReceiptVerification, ReceiptRejection> {
        let parsed = DeletionReceipt.parse(text)
        if let problem = problem(with: signature, object: .receipt, body: Array(text.utf8)) {
            if case .unknownSigner = problem, case .success(let other) = parsed, other.vaultId != vaultId {
                return .failure("it was issued by vault \(other.vaultId), not by vault \(vaultId) of this trust record")
            }
            switch problem {
            case .invalid(let id):
                return .failure("its signature by \(id) does not verify: the receipt was changed after it was signed, or another key signed it")
            case .unknownSigner(let id):
                return .failure("its signer \(id) is neither the master key nor a job credential of this trust record")
            case .missing:
                return .failure("it carries no signature")
            }
        }
        let receipt: DeletionReceipt
        switch parsed {
        case .failure(let rejection): return .failure(rejection)
        case .success(let r): receipt = r
        }
        guard receipt.vaultId == vaultId, receipt.masterKeyId == masterKeyId else {
            return .failure("it names vault \(receipt.vaultId) and master key \(receipt.masterKeyId), the trust record vault \(vaultId) and master key \(masterKeyId)")
        }
        let signerHex = signature.signerHex
        if let signer = signers.first(where: { $0.keyId == signerHex }), let revoked = signer.revokedAt,
           let issued = Timestamp.parse(receipt.issued), issued > revoked {
            return .failure("its signer \(signerHex) was revoked at \(Timestamp.format(revoked)), before the receipt's issue time \(receipt.issued)")
        }
        return .success(ReceiptVerification(receipt: receipt, signerKeyId: signerHex, signerRole: signerHex == masterKeyId ? "master" : "job",
                                            trustSerial: serial, masterKeyId: masterKeyId))
    }
}

extension DeletionReceipt {
    /// Verifies an exported receipt file offline (`receipt verify`, §6.3) with nothing but a copy of the vault's trust
    /// record file: the trust record's signature verifies with the master key it names (and that key's id is
    /// `masterKeyId` when one is pinned), and the receipt verifies against that record. Throws
    /// `VaultError.notVerified` naming the file and the reason otherwise.
    public static func verify(receiptFile path: String, trustFile trustPath: String, masterKeyId pin: String?) throws -> ReceiptVerification {
        for (file, what) in [(path, "receipt file"), (trustPath, "trust record file")] where !Posix.exists(file) {
            throw VaultError.notFound(path: file, what: what)
        }
        /// A file too large to be what it should be is refused like any other unreadable content.
        func contents(_ file: String, limit: Int, what: String) throws -> [UInt8] {
            do { return try Posix.readFile(file, maxLength: limit) } catch VaultError.invalidArgument {
                throw VaultError.notVerified(path: file, reason: "it is larger than any \(what) (\(limit) bytes)")
            }
        }
        let trust: TrustRecord
        switch TrustFile.verify(String(decoding: try contents(trustPath, limit: 1 << 20, what: "trust record"), as: UTF8.self), master: nil) {
        case .failure(.notATrustFile), .failure(.notARecord):
            throw VaultError.notVerified(path: trustPath, reason: "it is not a ShredVault trust record (pass the vault's `trust` file)")
        case .failure(.badSignature), .failure(.otherMasterKey):
            throw VaultError.notVerified(path: trustPath, reason: "its signature does not verify with the master key it names: the trust record was modified")
        case .success(let record):
            trust = record
        }
        if let pin, pin.lowercased() != trust.masterKeyId {
            throw VaultError.notVerified(path: trustPath, reason: "its master key is \(trust.masterKeyId), not the pinned \(pin.lowercased()): it is not the trust record of the vault you expect")
        }
        guard let file = ReceiptFile.decode(try contents(path, limit: 1 << 16, what: "receipt")) else {
            throw VaultError.notVerified(path: path, reason: "it is not an unmodified ShredVault deletion receipt ({\"receipt\":…,\"signature\":…} exactly as `shredvault receipt export` wrote it)")
        }
        switch trust.verifyReceipt(text: file.text, signature: file.signature) {
        case .failure(let rejection): throw VaultError.notVerified(path: path, reason: rejection.reason)
        case .success(let verification): return verification
        }
    }
}
