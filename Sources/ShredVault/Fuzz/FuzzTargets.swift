#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultArchive
import VaultCrypto

/// Fuzz harnesses: each target takes arbitrary bytes and runs them through the real parser or reader of one input
/// of the vault (README "Fuzzing"). Errors thrown by the code under test are the expected outcome for
/// almost every input; a target fails only by crashing, which includes the `precondition`s below that check the
/// reader's promises (a failed extraction leaves nothing behind, a parsed header re-encodes to the same bytes, …).
///
/// The same functions run under libFuzzer (`tools/fuzz`, the `shredvault-fuzz` executable built with
/// `-sanitize=fuzzer,address`) and in the normal test suite, which replays the committed seed corpus
/// (`Tests/FuzzCorpus/<target>/`). Every file a target writes lives in one private temporary directory per process
/// (mode 0700), emptied after each input and removed by ``cleanUp()`` and at exit.
///
/// The fixed keys below are fuzzing fixtures derived from public strings; they protect nothing.
public enum FuzzTargets {
    public struct Target: Sendable {
        /// Directory name of the seed corpus and `tools/fuzz` argument.
        public let name: String
        /// What the bytes are and which code reads them.
        public let summary: String
        /// Largest input worth generating (libFuzzer `-max_len`).
        public let maxLength: Int
        let body: @Sendable ([UInt8]) -> Bool

        /// Runs one input; true when the code under test accepted it completely (parsed, opened, extracted), false
        /// when it refused it with an error. Never throws.
        @discardableResult
        public func run(_ bytes: UnsafeRawBufferPointer) -> Bool {
            let accepted = body(Array(bytes))
            Fixture.shared.resetScratch()
            return accepted
        }

        @discardableResult
        public func run(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { run($0) } }
    }

    public static let all: [Target] = [
        Target(name: "bundle-header", summary: "bundle header bytes: BundleHeader.headerLength/decode, and what inspect and reindex derive from a header",
               maxLength: 512, body: bundleHeader),
        Target(name: "bundle-file", summary: "a whole bundle file: BundleReader.readHeader and BundleReader.extract with the vectors' data key",
               maxLength: 64 << 10, body: bundleFile),
        Target(name: "payload", summary: "first byte even: a tar, zstd-compressed; odd: a zstd frame; sealed with the real Cobblestone writer under a fixed key and header, then BundleReader.extract",
               maxLength: 64 << 10, body: payload),
        Target(name: "tar", summary: "a tar stream: TarReader (libarchive) entry by entry, data, end-of-archive and trailing-zero checks",
               maxLength: 64 << 10, body: tar),
        Target(name: "zstd", summary: "a zstd stream: ZstdDecompressor (one frame, checksum, nothing after it)",
               maxLength: 16 << 10, body: zstd),
        Target(name: "zlib", summary: "a zlib stream: zlibInflate",
               maxLength: 16 << 10, body: zlib),
        Target(name: "sidecar", summary: "a DEK sidecar: DEKSidecar.decode, then both KeySeal layers opened with fixed day, hold and user keys",
               maxLength: 1024, body: sidecar),
        Target(name: "sealed-key", summary: "a sealed key: KeySeal.open as a keystore private key, an inner and an outer DEK layer and a snapshot key, with fixed keys",
               maxLength: 1024, body: sealedKey),
        Target(name: "keystore-snapshot", summary: "first byte even: a whole snapshot file (vault id set to the fixture's); odd: the SQLite file sealed as a real snapshot to the fixture vault's epoch key; then Vault.decryptSnapshot in memory (ledger replay, policy purge, key count)",
               maxLength: 64 << 10, body: keystoreSnapshot),
        Target(name: "accounts-csv", summary: "SOURCE/accounts.csv: Posix.readTextFile and AccountsCSV.parse",
               maxLength: 16 << 10, body: accountsCSV),
        Target(name: "config", summary: "VAULT/config and backup.json: VaultConfig.parse and the backup manifest decoder",
               maxLength: 16 << 10, body: config),
        Target(name: "policy", summary: "the policy object of the config: RetentionPolicy decoding, validation and every day computation",
               maxLength: 4096, body: policy),
        Target(name: "key-file", summary: "key files: DataKeyFile.read, MasterKey.readRestoreKey (0600 files) and MasterKey.decodeArchiveKey (master.pub)",
               maxLength: 1024, body: keyFile),
        Target(name: "manifest", summary: "manifest.json: Manifest.decode, path rules, re-encoding",
               maxLength: 16 << 10, body: manifest),
        Target(name: "dates", summary: "--now, --received, --expiry and holidays: Timestamp.parse, CivilDay(iso:) and their printed forms",
               maxLength: 128, body: dates),
    ]

    public static func named(_ name: String) -> Target? { all.first { $0.name == name } }

    /// Removes the private temporary directory (also done at exit).
    public static func cleanUp() { Fixture.removeIfCreated() }

    // MARK: - Fixed material

    /// The data key of the known-answer vectors (vault-format.md §2.9): `000102…1f`.
    static let dataKey = SecretBytes(copying: (0..<32).map { UInt8($0) })
    /// The header of `samples/vectors/known-answer/tiny.svb`.
    static let payloadHeader = BundleHeader(
        vaultId: BundleHeader.zeroId, bundleId: Hex.decode("00112233445566778899aabbccddeeff")!, createdAt: 1_795_910_400,
        expiryDay: CivilDay(iso: "2027-02-26")!, userId: UserID("u0000001")!)
    /// Fixture only: every payload input is sealed under the same key and salt, which the writer never does.
    static let fixedSalt = (0..<24).map { UInt8($0) }

    /// A P-256 key pair from a public label (fixture only).
    static func fixedKey(_ label: String) -> P256PrivateKey {
        let scalar = try! SHA256.hash(Array("shredvault fuzz fixture: \(label)".utf8))
        return try! P256PrivateKey(rawScalar: SecretBytes(copying: scalar))
    }

    static let masterKey = fixedKey("master")
    static let userKey = fixedKey("user")
    static let dayKey = fixedKey("day")
    static let holdKey = fixedKey("hold")
    static let epochKey = fixedKey("epoch")
    /// The job credential of the fixture vault's trust record (signs version 2 sidecars).
    static let signerKey = fixedKey("signer")
    static let trust: TrustRecord = TrustRecord(
        format: TrustRecord.formatName, vaultId: Hex.encode(vaultId), masterKey: Hex.encode(masterKey.publicKey.x963Representation),
        masterKeyId: Hex.encode((try? KeyHierarchy.keyId(masterKey.publicKey)) ?? []),
        signers: [.init(keyId: Hex.encode((try? KeyHierarchy.keyId(signerKey.publicKey)) ?? []),
                        publicKey: Hex.encode(signerKey.publicKey.x963Representation), role: "job", addedAt: 0, revokedAt: nil)],
        serial: 1, signedAt: 0)
    static let bundleId = Array(repeating: UInt8(0xab), count: 16)
    static let vaultId = Hex.decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")!

    /// The binding of sealed DEKs in the sidecar and sealed-key targets: a vault bundle of user u0000001.
    static let binding: KeyHierarchy.Binding = {
        var h = payloadHeader
        h.vaultId = vaultId
        h.userKeyId = try! KeyHierarchy.keyId(userKey.publicKey)
        h.dayKeyId = try! KeyHierarchy.keyId(dayKey.publicKey)
        return KeyHierarchy.Binding(header: h)
    }()

    // MARK: - Targets

    static func bundleHeader(_ bytes: [UInt8]) -> Bool {
        if bytes.count >= BundleHeader.prefixLength {
            _ = describe { try BundleHeader.headerLength(fromPrefix: Array(bytes.prefix(BundleHeader.prefixLength)), path: "fuzz.svb") }
        }
        guard let header = describe(vaultErrorsOnly: true, { try BundleHeader.decode(bytes, path: "fuzz.svb") }) else { return false }
        precondition(header.encoded() == bytes, "a decoded bundle header does not re-encode to its bytes")
        precondition(header.length == bytes.count)
        // What `bundle inspect`, `reindex` and the key hierarchy derive from a header.
        _ = Timestamp.format(header.createdAt)
        _ = header.expiryDay.iso
        _ = Vault.bundleLocation(expiry: header.expiryDay, bundleId: header.bundleIdHex)
        _ = KeyHierarchy.Binding(header: header).bytes
        _ = header.vaultIdHex + header.bundleIdHex + header.userId.description
        return true
    }

    static func bundleFile(_ bytes: [UInt8]) -> Bool {
        let scratch = Fixture.shared.scratch
        let path = scratch + "/input.svb"
        Fixture.write(path, bytes)
        _ = describe(vaultErrorsOnly: true) { try BundleReader.readHeader(path: path) }
        return extractChecked(path, into: scratch)
    }

    static func payload(_ bytes: [UInt8]) -> Bool {
        guard let mode = bytes.first else { return false }
        let plaintext = Array(bytes.dropFirst())
        let scratch = Fixture.shared.scratch
        let path = scratch + "/payload.svb"
        // The writer's own primitives: the tar is compressed by the real ZstdCompressor (even first byte), or the
        // bytes are taken as the zstd frame itself (odd); either is encrypted by the real CobblestoneEncryptor.
        var frame: [UInt8] = []
        if mode & 1 == 0 {
            do {
                let compressor = try ZstdCompressor(level: 1) { frame += $0 }
                try plaintext.withUnsafeBytes { try compressor.write($0) }
                try compressor.finish()
            } catch { preconditionFailure("compressing \(plaintext.count) bytes failed: \(error)") }
        } else {
            frame = plaintext
        }
        let headerBytes = payloadHeader.encoded()
        var file = headerBytes
        do {
            let encryptor = try CobblestoneEncryptor(inputKey: dataKey, context: headerBytes, salt: fixedSalt) { file += $0 }
            try encryptor.write(frame)
            try encryptor.finish()
        } catch { preconditionFailure("sealing \(frame.count) bytes failed: \(error)") }
        Fixture.write(path, file)
        return extractChecked(path, into: scratch)
    }

    /// Extracts with the real reader and checks its promise (vault-format.md §2.5): on failure nothing is left
    /// beside or at the target; on success the target exists. Then verify-only must agree with extract.
    private static func extractChecked(_ path: String, into scratch: String) -> Bool {
        let parent = scratch + "/restore"
        let target = parent + "/user"
        try! Posix.makeDirectory(parent, mode: 0o700)
        let extracted = describe(vaultErrorsOnly: true) { try BundleReader.extract(path: path, dataKey: dataKey, to: target) }
        let verified = describe(vaultErrorsOnly: true) { try BundleReader.verify(path: path, dataKey: dataKey) }
        if let extracted {
            precondition(Posix.exists(target), "extract succeeded without creating the target")
            precondition(verified?.manifest == extracted.manifest, "verify and extract disagree about a bundle")
            _ = (extracted.manifest.fileCount, extracted.manifest.totalFileBytes)
        } else {
            precondition(!Posix.exists(target), "a failed extraction left its target")
            precondition((try? Posix.listDirectory(parent))?.isEmpty == true, "a failed extraction left files beside its target")
            precondition(verified == nil, "verify accepted a bundle that extract refused")
        }
        return extracted != nil
    }

    static func tar(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        let source: (UnsafeMutableRawBufferPointer) throws -> Int = { buffer in
            let n = min(buffer.count, bytes.count - offset)
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        let finished: Void? = describe {
            let reader = try TarReader(source: source)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
            defer { buffer.deallocate() }
            var entries = 0
            while let entry = try reader.nextEntry() {
                entries += 1
                precondition(entries <= bytes.count / 512 + 1, "more tar entries than 512-byte blocks")
                var total: Int64 = 0
                while true {
                    let n = try reader.readData(into: buffer)
                    if n == 0 { break }
                    total += Int64(n)
                }
                _ = (entry.path, entry.kind, entry.size, entry.mode, entry.mtime, entry.linkTarget, total)
            }
            try reader.finish()
        }
        return finished != nil
    }

    /// Output read per input is capped (a frame may legitimately expand a thousandfold); the cap only stops the
    /// harness early, the decompressor is never told.
    static let maxDecompressedBytes = 64 << 20

    static func zstd(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        let finished: Void? = describe {
            let decompressor = try ZstdDecompressor { buffer in
                let n = min(buffer.count, bytes.count - offset)
                bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                offset += n
                return n
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 17, alignment: 16)
            defer { buffer.deallocate() }
            var total = 0
            while total < maxDecompressedBytes {
                let n = try decompressor.read(into: buffer)
                if n == 0 { break }
                total += n
            }
        }
        return finished != nil
    }

    static func zlib(_ bytes: [UInt8]) -> Bool {
        describe { try zlibInflate(bytes) } != nil
    }

    static func sidecar(_ bytes: [UInt8]) -> Bool {
        guard let sidecar = describe(vaultErrorsOnly: true, { try DEKSidecar.decode(bytes, path: "fuzz.dek") }) else { return false }
        precondition(sidecar.encoded() == bytes, "a decoded sidecar does not re-encode to its bytes")
        let outer = sidecar.outerRole == .hold ? holdKey : dayKey
        // Version 2: the seal signature must verify (vault-format.md §3.10) and the inner layer must hash to the signed
        // value before the DEK is opened; a sidecar failing either is refused like a forged one.
        if let provenance = sidecar.provenance {
            let body = BundleStatement.seal(vaultId: vaultId, bundleId: bundleId, role: sidecar.outerRole, outerKeyId: sidecar.outerKeyId,
                                            expiryDay: 20875, outer: sidecar.sealedDEK)
            guard trust.problem(with: provenance.sealSignature, object: .seal, body: body) == nil else { return false }
            return describe {
                let inner = try KeyHierarchy.openOuter(sidecar.sealedDEK, binding: binding, role: sidecar.outerRole, outerKey: outer)
                guard try SHA256.hash(inner.withUnsafeBytes { Array($0) }) == provenance.innerSHA256 else {
                    throw VaultError.notGenuine(subject: "fuzz.dek", reason: "inner hash")
                }
                return try KeyHierarchy.openInner(inner, binding: binding, userKey: userKey)
            } != nil
        }
        return describe {
            try KeyHierarchy.openDataKey(sidecar.sealedDEK, binding: binding, outerRole: sidecar.outerRole, outerKey: outer,
                                         userKey: userKey)
        } != nil
    }

    static func sealedKey(_ bytes: [UInt8]) -> Bool {
        var opened = 0
        for role in KeyRole.allCases {
            opened += describe {
                try KeyHierarchy.openPrivateKey(bytes, restoreKey: masterKey, vaultId: vaultId, role: role, subject: "u0000001",
                                                keyId: try KeyHierarchy.keyId(userKey.publicKey))
            } == nil ? 0 : 1
        }
        opened += describe { try KeySeal.open(bytes, with: userKey, info: Array("dek-inner".utf8), aad: binding.bytes) } == nil ? 0 : 1
        opened += describe { try KeyHierarchy.openOuter(bytes, binding: binding, role: .day, outerKey: dayKey) } == nil ? 0 : 1
        opened += describe { try KeySeal.open(bytes, with: epochKey, info: KeystoreSnapshotHeader.sealInfo, aad: []) } == nil ? 0 : 1
        if bytes.count >= P256PublicKey.x963Size {
            _ = describe { try P256PublicKey(x963Representation: Array(bytes.prefix(P256PublicKey.x963Size))) }
        }
        return opened > 0
    }

    static func keystoreSnapshot(_ bytes: [UInt8]) -> Bool {
        guard let mode = bytes.first else { return false }
        let fixture = Fixture.shared
        guard let vault = fixture.vault else { preconditionFailure("the fixture vault could not be created") }
        let path = fixture.scratch + "/snapshot.svks"
        if mode & 1 == 0 {
            var file = Array(bytes.dropFirst())
            // Snapshots of other vaults are refused first; give the rest of the header a chance.
            if file.count >= 32 { file.replaceSubrange(16..<32, with: vault.vaultId) }
            Fixture.write(path, file)
        } else {
            do {
                let epochStart = vault.policy.epochStart(CivilDay(unixSeconds: Fixture.now))
                let (header, k) = try KeystoreSnapshotHeader.make(
                    vaultId: vault.vaultId, takenAt: Fixture.now, epochStart: epochStart, epochKey: fixture.epochKey!,
                    backupDays: vault.policy.backupDays)
                _ = unlink(path)
                _ = try SealedFile.write(contents: SecretBytes(copying: Array(bytes.dropFirst())), header: header.encoded(), key: k, to: path)
            } catch { preconditionFailure("sealing a snapshot failed: \(error)") }
        }
        // Decrypted, replayed and checked in memory (sqlite3_deserialize): nothing may appear on disk either way.
        let before = (try? Posix.listDirectory(fixture.scratch)) ?? []
        let report = describe(vaultErrorsOnly: true) { () throws -> KeystoreRestoreReport in
            let (restored, report) = try vault.decryptSnapshot(path, restoreKey: fixture.restoreKey, now: Fixture.now)
            restored.wipeImage()
            return report
        }
        precondition(((try? Posix.listDirectory(fixture.scratch)) ?? []) == before, "decrypting a snapshot wrote a file")
        return report != nil
    }

    static func accountsCSV(_ bytes: [UInt8]) -> Bool {
        let path = Fixture.shared.scratch + "/accounts.csv"
        Fixture.write(path, bytes)
        guard let accounts = describe(vaultErrorsOnly: true, { try AccountsCSV.parse(try Posix.readTextFile(path), path: path) }) else { return false }
        precondition(Set(accounts.map(\.userId)).count == accounts.count, "accounts.csv parsed with a duplicate user")
        for a in accounts { _ = RetentionPolicy().isInactive(lastActive: a.lastActive, today: CivilDay(unixSeconds: Fixture.now)) }
        return true
    }

    static func config(_ bytes: [UInt8]) -> Bool {
        let path = Fixture.shared.scratch + "/config"
        Fixture.write(path, bytes)
        guard let text = describe({ try Posix.readTextFile(path) }) else { return false }
        let config = describe(vaultErrorsOnly: true) { try VaultConfig.parse(text, path: path) }
        if let config {
            _ = config.vaultIdBytes
            exercise(config.policy)
        }
        let backup = describe { try JSONDecoder().decode(BackupManifest.self, from: Data(text.utf8)) }
        return config != nil || backup != nil
    }

    static func policy(_ bytes: [UInt8]) -> Bool {
        guard let policy = describe({ try JSONDecoder().decode(RetentionPolicy.self, from: Data(bytes)) }) else { return false }
        guard policy.problem == nil else { return false }
        exercise(policy)
        return true
    }

    /// Every day computation of a valid policy, over days around the epoch and the fixture's present.
    private static func exercise(_ policy: RetentionPolicy) {
        guard policy.problem == nil else { return }
        for day in [CivilDay(daysSinceEpoch: 0), CivilDay(unixSeconds: Fixture.now), CivilDay(iso: "9999-12-31")!] {
            let expiry = policy.expiryDay(archivedOn: day)
            precondition(expiry >= day && expiry.daysSinceEpoch - day.daysSinceEpoch < RetentionPolicy.maxArchiveDays)
            let deadline = policy.deletionDeadline(received: day)
            precondition(deadline > day, "a deletion deadline on or before the day received")
            let start = policy.epochStart(day)
            precondition(start <= day && day.daysSinceEpoch - start.daysSinceEpoch < Int64(policy.backupEpochDays))
            let destroyed = policy.epochKeyDestructionDay(epochStart: start)
            precondition(destroyed.daysSinceEpoch - start.daysSinceEpoch <= Int64(RetentionPolicy.maxBackupDays), "G3 window over 30 days")
            _ = policy.isInactive(lastActive: day, today: expiry)
            _ = policy.expiryAfterRelease(originalExpiry: expiry, releaseDay: deadline)
        }
    }

    static func keyFile(_ bytes: [UInt8]) -> Bool {
        let path = Fixture.shared.scratch + "/key"
        Fixture.write(path, bytes, mode: 0o600)
        let dataKey = describe(vaultErrorsOnly: true) { try DataKeyFile.read(path) }
        let restoreKey = describe(vaultErrorsOnly: true) { try MasterKey.readRestoreKey(path) }
        let archiveKey = describe(vaultErrorsOnly: true) { try MasterKey.decodeArchiveKey(try Posix.readTextFile(path), path: path) }
        return dataKey != nil || restoreKey != nil || archiveKey != nil
    }

    static func manifest(_ bytes: [UInt8]) -> Bool {
        guard let manifest = describe({ try Manifest.decode(bytes) }) else { return false }
        for entry in manifest.entries {
            _ = EntryPath.problem(entry.path)
            _ = EntryPath.parent(entry.path)
        }
        // Not totalFileBytes: only verified manifests (sizes counted from the tar) are summed; see extractChecked.
        _ = manifest.fileCount
        guard let encoded = describe({ try manifest.encoded() }) else { preconditionFailure("a decoded manifest does not encode") }
        let again = describe { try Manifest.decode(encoded) }
        precondition(again == manifest, "a manifest does not survive encoding and decoding")
        return true
    }

    static func dates(_ bytes: [UInt8]) -> Bool {
        guard let text = String(validating: bytes, as: UTF8.self) else { return false }
        let parsed = Timestamp.parse(text)
        if let seconds = parsed {
            // A zone offset can move a time out of the years 1970...9999, which are printed but not parsed.
            let printed = Timestamp.format(seconds)
            if let back = Timestamp.parse(printed) {
                precondition(back == seconds, "Timestamp.format does not parse back to the same time")
            } else {
                precondition(seconds < 0 || seconds >= 253_402_300_800, "Timestamp.format printed an unparsable time in 1970...9999")
            }
            _ = CivilDay(unixSeconds: seconds).weekdayIndex
        }
        if let day = CivilDay(iso: text) {
            precondition(day.iso == text, "CivilDay(iso:) does not print back")
            precondition(CivilDay(iso: day.adding(days: 1).iso) != nil || day.iso == "9999-12-31")
        }
        return parsed != nil
    }

    /// Runs `body`; a thrown error is an expected outcome: its description (what the CLI prints) is rendered.
    /// With `vaultErrorsOnly`, the error must be a `VaultError`: the vault's readers report every refusal as one, which
    /// the CLI maps to its documented exit codes (anything else is "unexpected internal error", exit 1).
    @discardableResult
    static func describe<T>(vaultErrorsOnly: Bool = false, _ body: () throws -> T) -> T? {
        do { return try body() } catch {
            _ = String(describing: error)
            if vaultErrorsOnly { precondition(error is VaultError, "a refusal reported as \(type(of: error)): \(error)") }
            return nil
        }
    }
}

/// The per-process fixture: a private temporary directory with a scratch area per input and, made on first use,
/// a vault (fixed restore key) with one backup-epoch key for the keystore-snapshot target.
final class Fixture: @unchecked Sendable {
    static let now: Int64 = 1_795_910_400  // 2026-11-29T00:00:00Z
    nonisolated(unsafe) private static var created = false
    static let shared = Fixture()

    let root: String
    let scratch: String
    let restoreKey = FuzzTargets.masterKey
    private(set) lazy var vault: Vault? = makeVault()
    private(set) var epochKey: StoredKey?

    private init() {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        root = base + "/shredvault-fuzz-" + String(getpid()) + "-" + Hex.encode(try! SecureRandom.bytes(count: 6))
        scratch = root + "/scratch"
        try! Posix.makeDirectory(root, mode: 0o700)
        try! Posix.makeDirectory(scratch, mode: 0o700)
        Fixture.created = true
        atexit { Fixture.removeIfCreated() }
    }

    static func removeIfCreated() {
        guard created else { return }
        try? Posix.removeTree(shared.root)
    }

    /// Empties the scratch directory after each input.
    func resetScratch() {
        guard let names = try? Posix.listDirectory(scratch) else { return }
        for name in names { try! Posix.removeTree(scratch + "/" + name) }
    }

    static func write(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600) {
        let file = try! FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode_t(mode))
        try! file.write(bytes)
        try! file.close()
    }

    private func makeVault() -> Vault? {
        do {
            let keyPath = root + "/restore.key"
            try SecretKeyText.writeNewFile(keyPath, SecretKeyText.encode(try restoreKey.rawScalar(), prefix: Array(MasterKey.restorePrefix.utf8)))
            _ = try Vault.create(root: root + "/vault", restoreKeyPath: keyPath, policy: RetentionPolicy(), keyringPath: root + "/keyring.db",
                                 now: Fixture.now)
            let vault = try Vault(root: root + "/vault")
            let epochStart = vault.policy.epochStart(CivilDay(unixSeconds: Fixture.now))
            epochKey = try vault.keyring.keyCreatingIfNeeded(role: .epoch, subject: epochStart.iso, master: vault.archiveKey,
                                                             vaultId: vault.vaultId, now: Fixture.now)
            // A few keys, and one recorded erasure, so the ledger replay has work to do.
            _ = try vault.keystore.keyCreatingIfNeeded(role: .user, subject: "u0000001", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
            _ = try vault.keystore.keyCreatingIfNeeded(role: .day, subject: "2027-02-26", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
            let gone = try vault.keystore.keyCreatingIfNeeded(role: .user, subject: "u0000002", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
            try vault.recordErasures([gone], now: Fixture.now, reason: "fuzz fixture")
            return vault
        } catch {
            return nil
        }
    }
}
