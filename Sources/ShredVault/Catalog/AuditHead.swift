import Foundation
import GRDB
import VaultCrypto

/// A signed audit head (vault-format.md §6.2): the job that appended audit records `first…last` in one catalog
/// transaction states that they run from `prev_hash` of record `first` to `hash` of record `last`.
public struct AuditHead: Equatable, Sendable {
    public var first: Int64
    public var last: Int64
    /// `prev_hash` of record `first`: the hash of record `first - 1` (zeros for the first record), which binds the
    /// whole log before the head.
    public var prevHash: [UInt8]
    /// `hash` of record `last`.
    public var hash: [UInt8]
    /// The job's clock when it signed (the `at` of its records).
    public var at: Int64
    public var signature: VaultSignature

    /// `vault_id(16) ‖ be64(first) ‖ be64(last) ‖ prev_hash(32) ‖ hash(32) ‖ be64(at)`, signed as `.auditHead`.
    public static func body(vaultId: [UInt8], first: Int64, last: Int64, prevHash: [UInt8], hash: [UInt8], at: Int64) -> [UInt8] {
        var out = vaultId
        out.appendBigEndian(UInt64(bitPattern: first))
        out.appendBigEndian(UInt64(bitPattern: last))
        out += prevHash + hash
        out.appendBigEndian(UInt64(bitPattern: at))
        return out
    }

    public func body(vaultId: [UInt8]) -> [UInt8] {
        Self.body(vaultId: vaultId, first: first, last: last, prevHash: prevHash, hash: hash, at: at)
    }
}

/// How the vault signs the heads its catalog writes: the `.auditHead` signature of a body, or nil in a vault
/// without a trust record (no head is written there).
struct AuditHeadSigner {
    let vaultId: [UInt8]
    let sign: ([UInt8]) throws -> VaultSignature?
}

/// One row of `audit_heads`, as stored (the hashes it signs are those of the audit rows it names).
struct StoredAuditHead {
    var first: Int64
    var last: Int64
    var at: Int64
    /// Nil when the stored bytes are not an 80-byte signature.
    var signature: VaultSignature?
}

extension Catalog {
    static func lastAuditSeq(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT coalesce(max(seq), 0) FROM audit")) ?? 0
    }

    /// Appends the signed head of the audit records appended after `before` in this transaction, if any (§6.2).
    static func appendAuditHead(_ db: Database, after before: Int64, signer: AuditHeadSigner) throws {
        let last = try lastAuditSeq(db)
        guard last > before else { return }
        let first = before + 1
        guard let prev = try Data.fetchOne(db.cachedStatement(sql: "SELECT prev_hash FROM audit WHERE seq = ?"), arguments: [first]),
              let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT hash, at FROM audit WHERE seq = ?"), arguments: [last]) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "audit records \(first)–\(last) were appended out of sequence")
        }
        let hash: Data = row["hash"], at: Int64 = row["at"]
        let body = AuditHead.body(vaultId: signer.vaultId, first: first, last: last, prevHash: Array(prev), hash: Array(hash), at: at)
        guard let signature = try signer.sign(body) else { return }
        try db.cachedStatement(sql: "INSERT INTO audit_heads (first_seq, last_seq, at, signature) VALUES (?, ?, ?, ?)")
            .execute(arguments: [first, last, at, Data(signature.encoded)])
    }

    /// Every stored head, by first record.
    static func auditHeads(_ db: Database) throws -> [StoredAuditHead] {
        try Row.fetchAll(db, sql: "SELECT first_seq, last_seq, at, signature FROM audit_heads ORDER BY first_seq").map {
            StoredAuditHead(first: $0["first_seq"], last: $0["last_seq"], at: $0["at"], signature: VaultSignature($0["signature"] as Data?))
        }
    }
}

/// An audit head exported for storage outside the vault (`audit head`, §6.2): a small JSON document holding what
/// verifying it needs besides the vault's trust record.
public struct ExportedAuditHead: Codable, Equatable, Sendable {
    public static let formatName = "shredvault-audit-head/v1"
    public var format: String
    public var vaultId: String
    /// The head's last record: the log must still hold it, with exactly `hash`.
    public var seq: Int64
    public var hash: String
    public var at: Int64
    public var first: Int64
    public var prevHash: String
    /// The signer's key id (the first 16 bytes of `signature`).
    public var signer: String
    /// The §3.10 signature: signer key id ‖ r ‖ s, 80 bytes.
    public var signature: String

    public init(vaultId: [UInt8], head: AuditHead) {
        format = Self.formatName
        self.vaultId = Hex.encode(vaultId)
        seq = head.last
        hash = Hex.encode(head.hash)
        at = head.at
        first = head.first
        prevHash = Hex.encode(head.prevHash)
        signer = head.signature.signerHex
        signature = Hex.encode(head.signature.encoded)
    }

    /// The compact, key-sorted JSON text (one line, no trailing newline).
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Reads an exported head from a file (at most 4096 bytes).
    public static func read(_ path: String) throws -> ExportedAuditHead {
        guard Posix.exists(path) else { throw VaultError.notFound(path: path, what: "exported audit head") }
        let text: String
        do { text = try Posix.readTextFile(path, maxLength: 4096) } catch VaultError.invalidArgument {
            throw VaultError.malformedInput(path: path, line: 1, reason: "not a ShredVault audit head (larger than 4096 bytes)")
        }
        return try parse(text, path: path)
    }

    /// Parses an exported head; a document that is not one (or not of this format version) is malformed input.
    public static func parse(_ text: String, path: String) throws -> ExportedAuditHead {
        let head: ExportedAuditHead
        do { head = try JSONDecoder().decode(ExportedAuditHead.self, from: Data(text.utf8)) } catch {
            throw VaultError.malformedInput(path: path, line: 1, reason: "not a ShredVault audit head (expected the JSON that `shredvault audit head` prints)")
        }
        guard head.format == formatName else {
            throw VaultError.malformedInput(path: path, line: 1, reason: "unknown audit head format '\(head.format)' (expected \(formatName))")
        }
        return head
    }

    /// The head as signed, or nil when a field is not lower-case hex of its fixed size (16, 32, 32 and 80 bytes) or
    /// `signer` is not the signature's key id.
    public var head: AuditHead? {
        func bytes(_ text: String, _ count: Int) -> [UInt8]? {
            guard let b = Hex.decode(text), b.count == count, Hex.encode(b) == text else { return nil }
            return b
        }
        guard bytes(vaultId, 16) != nil, let h = bytes(hash, 32), let p = bytes(prevHash, 32),
              let s = bytes(signature, VaultSignature.length).flatMap(VaultSignature.init), s.signerHex == signer else { return nil }
        return AuditHead(first: first, last: seq, prevHash: p, hash: h, at: at, signature: s)
    }
}
