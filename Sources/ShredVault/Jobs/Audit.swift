import Foundation
import GRDB

/// What `audit verify` found (vault-format.md §6, §6.2).
public struct AuditVerification: Sendable, Codable, Equatable {
    /// Why a verification failed: the hash chain itself, the signed heads in the vault, or the exported head given.
    public enum Kind: String, Sendable, Codable { case chain = "audit-chain", signature = "audit-signature", exportedHead = "audit-head" }

    /// Records whose chain verified (all of them when there is no chain problem).
    public var records = 0
    /// Records covered by a signed head that verifies.
    public var signedRecords = 0
    /// Records before the trust record (or, for a trust record older than §6.2, before the first head), which no
    /// head covers: reported, not a failure.
    public var unsignedRecords = 0
    public var heads = 0
    /// The last record of the exported head that was checked, when one was given and it holds.
    public var exportedHeadSeq: Int64?
    public var kind: Kind?
    public var problem: String? { didSet { ok = problem == nil } }
    /// No problem (encoded in the JSON report).
    public private(set) var ok = true

    public init() {}
}

/// When the last signed head was exported (`audit head`), as the catalog's `meta` records it.
public struct AuditHeadExport: Sendable, Codable, Equatable {
    public var at: Int64
    public var seq: Int64
}

extension Vault {
    /// An exported head older than this is reported by `check` (§6.2): records after it could be removed unnoticed.
    public static let auditHeadExportMaxAge: Int64 = 7 * 86_400

    static let auditHeadExportedAtKey = "auditHeadExportedAt"
    static let auditHeadExportedSeqKey = "auditHeadExportedSeq"

    /// Verifies the audit log (§6.2): the hash chain; in a vault with a trust record, that every record from the
    /// trust record's start on is covered by exactly one signed head whose signature verifies and whose hashes are
    /// those of the records it names; and, given an exported head, that it verifies and the log still holds its
    /// record with exactly its hash (so nothing at or before it was rewritten, dropped or truncated).
    public func verifyAudit(exportedHead: ExportedAuditHead? = nil) throws -> AuditVerification {
        try catalog.read { db in try verifyAudit(db, exportedHead: exportedHead) }
    }

    private func verifyAudit(_ db: Database, exportedHead exported: ExportedAuditHead?) throws -> AuditVerification {
        var report = AuditVerification()
        func fail(_ kind: AuditVerification.Kind, _ problem: String) -> AuditVerification {
            report.kind = kind
            report.problem = problem
            return report
        }
        let heads = try Catalog.auditHeads(db)
        var wanted = Set(heads.flatMap { [$0.first, $0.last] })
        if let exported { wanted.formUnion([exported.first, exported.seq]) }
        let chain = try Catalog.walkAudit(db, collecting: wanted)
        report.records = chain.records
        report.heads = heads.count
        if let problem = chain.problem { return fail(.chain, problem) }
        let last = chain.lastSeq

        guard let trust else {
            // Heads cannot be checked without the record naming their signers; a vault that had one lost it.
            if !heads.isEmpty {
                return fail(.signature, "the audit log carries \(Self.plural(heads.count, "signed head")) but the vault has no trust record to check them: it was removed")
            }
            report.unsignedRecords = chain.records
            if exported != nil {
                return fail(.exportedHead, "the vault has no trust record, so the exported head's signature cannot be checked: it was removed, or the vault predates it (`shredvault trust init`)")
            }
            return report
        }

        func records(_ a: Int64, _ b: Int64) -> String { a == b ? "audit record \(a) is" : "audit records \(a)–\(b) are" }
        func verifies(_ h: StoredAuditHead) -> SignatureProblem? {
            guard h.last <= last, let first = chain.links[h.first], let final = chain.links[h.last] else { return .missing }
            let body = AuditHead.body(vaultId: vaultId, first: h.first, last: h.last, prevHash: first.prev, hash: final.hash, at: h.at)
            return trust.problem(with: h.signature, object: .auditHead, body: body)
        }
        // Where signed heads start: the trust record says; a catalog rebuilt by reindex under the trust record (its
        // first record a signed `reindex`) starts over at 1; a trust record older than §6.2 says nothing, and then
        // the first head marks the start.
        let rebuilt = chain.firstAction == "reindex" && heads.first.map { $0.first == 1 && verifies($0) == nil } == true
        let anchor: Int64? = rebuilt ? 1 : trust.auditSignedFrom
        if let anchor, last < anchor {
            return fail(.signature, "the audit log ends at record \(last) but the trust record (serial \(trust.serial)) says records from \(anchor) on are signed: records were removed")
        }
        // From `start` on, the heads must tile the log: each record in exactly one head that verifies.
        let start = anchor ?? heads.first?.first ?? last + 1
        var next = start
        for h in heads where h.last >= start {
            let span = h.first == h.last ? "audit record \(h.first)" : "audit records \(h.first)–\(h.last)"
            if h.last > last {
                return fail(.signature, "the signed head of \(span) names records the log does not have (it ends at record \(last)): records were removed")
            }
            if h.first > next {
                return fail(.signature, "\(records(next, h.first - 1)) not covered by a signed head: not written by a job of this vault")
            }
            // Only the first head may reach back before the start; any other overlap means two heads claim a record.
            if h.first < next && next != start {
                return fail(.signature, "\(records(h.first, min(h.last, next - 1))) covered by more than one signed head")
            }
            if let problem = verifies(h) {
                return fail(.signature, "the signed head of \(span) does not hold: \(problem) (records rewritten, or the head forged)")
            }
            report.signedRecords += Int(h.last - h.first + 1)
            next = h.last + 1
        }
        if next <= last {
            return fail(.signature, "\(records(next, last)) not covered by a signed head: not written by a job of this vault")
        }
        // Records before the start: those of heads that still verify (e.g. written before a `trust init` re-established
        // the record) count as signed, the others as unsigned.
        for h in heads where h.last < start && verifies(h) == nil { report.signedRecords += Int(h.last - h.first + 1) }
        report.unsignedRecords = max(0, report.records - report.signedRecords)

        if let exported {
            guard exported.vaultId == config.vaultId else {
                return fail(.exportedHead, "the exported head is of vault \(exported.vaultId), not of this vault \(config.vaultId)")
            }
            guard let head = exported.head else {
                return fail(.exportedHead, "the exported head is damaged: a field is not lower-case hex of its size, or its signer is not the signature's")
            }
            if let problem = trust.problem(with: head.signature, object: .auditHead, body: head.body(vaultId: vaultId)) {
                return fail(.exportedHead, "the exported head of record \(head.last) does not verify: \(problem) (it was edited)")
            }
            guard head.last <= last else {
                return fail(.exportedHead, "the audit log ends at record \(last), before the exported head's record \(head.last): records were removed")
            }
            guard chain.links[head.last]?.hash == head.hash, chain.links[head.first]?.prev == head.prevHash else {
                return fail(.exportedHead, "audit record \(head.last) differs from the exported head: the log was rewritten at or before it")
            }
            report.exportedHeadSeq = head.last
        }
        return report
    }

    private static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    /// The latest signed head (§6.2), after verifying the whole log: nil, with the verification's problem, when the
    /// log fails it (a head is not exported from a log that fails).
    public func latestAuditHead() throws -> (head: ExportedAuditHead?, verification: AuditVerification) {
        let verification = try verifyAudit()
        guard verification.ok else { return (nil, verification) }
        guard trust != nil else {
            throw VaultError.notFound(path: Self.trustPath(root), what: "trust record (only a vault with one signs audit heads: run `shredvault trust init`)")
        }
        let latest = try catalog.read { db in
            try Row.fetchOne(db, sql: """
                SELECT h.first_seq, h.last_seq, h.at, h.signature, f.prev_hash, l.hash FROM audit_heads h
                JOIN audit f ON f.seq = h.first_seq JOIN audit l ON l.seq = h.last_seq ORDER BY h.last_seq DESC LIMIT 1
                """)
        }
        guard let latest, let signature = VaultSignature(latest["signature"] as Data?) else {
            throw VaultError.notFound(path: "in " + catalog.path, what: "signed audit head (the next job that changes the vault signs one, e.g. `shredvault sweep`)")
        }
        let head = AuditHead(first: latest["first_seq"], last: latest["last_seq"], prevHash: Array(latest["prev_hash"] as Data),
                             hash: Array(latest["hash"] as Data), at: latest["at"], signature: signature)
        return (ExportedAuditHead(vaultId: vaultId, head: head), verification)
    }

    /// Records in the catalog's `meta` that `head` was exported at `now`, for `status` and `check`. A bookkeeping write
    /// by a command that runs under the shared lock (it changes nothing a job relies on); it waits for another
    /// exporter instead of failing.
    public func recordAuditHeadExport(_ head: ExportedAuditHead, now: Int64) throws {
        try catalog.writeMeta([Self.auditHeadExportedAtKey: String(now), Self.auditHeadExportedSeqKey: String(head.seq)])
    }

    /// Writes an exported head to `path` (one line; atomic replace, mode 0644). The path must be outside the vault
    /// directory: whoever rewrites the vault would rewrite a head kept there too.
    public func writeExportedAuditHead(_ head: ExportedAuditHead, to path: String) throws {
        let cwd = FileManager.default.currentDirectoryPath
        let absolutePath = path.hasPrefix("/") ? path : cwd + "/" + path
        let absoluteRoot = root.hasPrefix("/") ? root : cwd + "/" + root
        if absolutePath.hasPrefix(absoluteRoot + "/") {
            throw VaultError.invalidArgument("the exported head must be stored outside the vault (\(path) is inside \(root)): whoever rewrites the vault would rewrite it too")
        }
        try Posix.writeFileAtomically(absolutePath, Array((try head.encoded() + "\n").utf8), mode: 0o644)
    }

    /// When the last head was exported, if ever.
    public func lastAuditHeadExport() throws -> AuditHeadExport? {
        try catalog.read { db in try Self.lastAuditHeadExport(db) }
    }

    static func lastAuditHeadExport(_ db: Database) throws -> AuditHeadExport? {
        let values = try Row.fetchAll(db, sql: "SELECT key, value FROM meta WHERE key IN (?, ?)", arguments: [auditHeadExportedAtKey, auditHeadExportedSeqKey])
        var at: Int64?, seq: Int64?
        for row in values {
            let key: String = row["key"], value: String = row["value"]
            if key == auditHeadExportedAtKey { at = Int64(value) } else { seq = Int64(value) }
        }
        guard let at, let seq else { return nil }
        return AuditHeadExport(at: at, seq: seq)
    }
}
