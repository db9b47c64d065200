#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto

/// The vault's `config` file (JSON).
public struct VaultConfig: Codable, Sendable, Equatable {
    public static let formatName = "shredvault-vault/v1"
    public var format: String
    public var vaultId: String
    public var createdAt: Int64
    public var keystorePath: String
    /// Absolute path of the keyring (backup-epoch keys and the erasure-ledger mirror), outside the vault.
    public var keyringPath: String?
    public var policy: RetentionPolicy
    /// The destruction root (§3.7); absent in a vault made before the ratchet, whose first mutating job creates the
    /// root file at the default place and records it here.
    public var root: RootConfig?
    /// The job credential (§3.9): absolute path of the signing key file outside the vault that the jobs that write
    /// use; absent in a vault made before the trust record.
    public var jobKeyPath: String?
    /// A drill vault (vault-format.md §6.4): its clock is free (`--now` and `SHREDVAULT_NOW` are taken by every job, and no
    /// clock guard applies) and it never shares a keyring or destruction root with a production vault. Absent in a
    /// production vault; a drill never becomes one.
    public var drill: Bool?
    /// Where bundles and DEK sidecars are kept (§6.5): absent for the vault directory, else `s3://BUCKET[/PREFIX]`.
    /// Never credentials: those come from the AWS_* environment variables.
    public var bundleStore: String?

    public var isDrill: Bool { drill ?? false }

    /// The vault id's 16 bytes; `parse` accepts only 32 lower-case hex digits.
    public var vaultIdBytes: [UInt8] {
        guard let bytes = Hex.decode(vaultId), bytes.count == 16 else { preconditionFailure("vaultId was not validated") }
        return bytes
    }

    /// Decodes the text of a `config` file and validates every field (`invalidField`); a failure names the file and
    /// the field (`VaultError.invalidConfig`).
    public static func parse(_ text: String, path: String) throws -> VaultConfig {
        let config: VaultConfig
        do { config = try JSONDecoder().decode(VaultConfig.self, from: Data(text.utf8)) } catch let error as DecodingError {
            let (field, reason) = describe(error)
            throw VaultError.invalidConfig(path: path, field: field, reason: reason)
        }
        if let (field, reason) = config.invalidField { throw VaultError.invalidConfig(path: path, field: field, reason: reason) }
        return config
    }
}

/// Where the destruction root is (vault-format.md §3.7): `file` (software mode, the default) or `pkcs11`.
public struct RootConfig: Codable, Sendable, Equatable {
    public var kind: String
    /// `file`: absolute path of the root file, outside the vault directory.
    public var path: String?
    /// `pkcs11`: module path, token label, and optionally a 0600 file holding the PIN (else $SHREDVAULT_PKCS11_PIN).
    public var module: String?
    public var token: String?
    public var pinFile: String?

    public static func file(_ path: String) -> RootConfig { RootConfig(kind: "file", path: path) }
    public static func pkcs11(module: String, token: String, pinFile: String?) -> RootConfig {
        RootConfig(kind: "pkcs11", module: module, token: token, pinFile: pinFile)
    }
}

/// An open vault: config, archive (master public) key, catalog, keystore, and the job lock.
///
/// Layout (DESIGN-BRIEF §5): `config`, `master.pub`, `catalog.db`, `keys/keystore.db` (0700),
/// `bundles/YYYY/MM/DD/<bundle-id>.svb` by expiry day, `lock`.
public final class Vault: @unchecked Sendable {
    public let root: String
    public internal(set) var config: VaultConfig
    /// Where the bundles are (§6.5): the vault directory, or an S3 bucket.
    public let store: BundleStore
    public let archiveKey: P256PublicKey
    public let catalog: Catalog
    public let keystore: Keystore
    /// Backup-epoch keys and the erasure-ledger mirror, beside the restore key (vault-format.md §5).
    public let keyring: Keystore
    /// The destruction root (§3.7); nil only in a vault made before the ratchet, until `convergeRoot` creates it.
    public internal(set) var destructionRoot: DestructionRoot?
    /// The signed trust record (§3.9), checked against master.pub at open; nil in a vault made before it.
    public let trust: TrustRecord?
    /// The job credential, pinned to this vault's master key and listed in the trust record; loaded for jobs that
    /// change the vault.
    public let jobCredential: JobCredential?
    /// The restore key, when its holder runs a job that signs (`trust init|rotate`, §3.10).
    var administrativeSigner: VaultSigner?
    /// The operator confirmed the job's clock (`--accept-clock`, §6.4): a clock the guard would refuse is accepted,
    /// audited, and becomes the vault's latest job time.
    public var acceptClock = false
    /// The time this job's clock was admitted at (`admitClock`), so the jobs a job runs first admit it once.
    var admittedClock: Int64?
    /// The keyring did not exist and this open made a new, empty one (`keyring rebuild` fills it).
    let keyringCreated: Bool
    private let lock: FileLock
    let readOnly: Bool
    /// Tests only: a named step at which the job stops as if the process had died there (`reached(_:)`).
    var simulatedCrashPoint: String?

    struct SimulatedCrash: Error {}

    /// Tests only: faults the archive's verification must catch (a byte of the compressed stream flipped before
    /// encryption; a byte of the bundle file flipped after it was written).
    struct ArchiveFaults {
        /// The user whose bundle gets the fault.
        var user: String
        var flipCompressedByteAt: Int64?
        var flipFileByteAt: Int64?
    }
    var archiveFaults: ArchiveFaults?

    /// Marks a step boundary of a multi-step job; throws `SimulatedCrash` when a test asked to stop there.
    func reached(_ point: String) throws {
        if simulatedCrashPoint == point { throw SimulatedCrash() }
    }

    public var vaultId: [UInt8] { config.vaultIdBytes }
    public var policy: RetentionPolicy { config.policy }

    static func configPath(_ root: String) -> String { root + "/config" }
    /// The job credential's path for the jobs that change the vault (§3.9).
    public static let jobKeyVariable = "SHREDVAULT_JOB_KEY"
    static func archiveKeyPath(_ root: String) -> String { root + "/master.pub" }

    /// Opens an existing vault and takes its lock (waiting up to `lockWait` seconds).
    /// - Parameters:
    ///   - createMissingCatalog: `reindex` rebuilds a lost catalog; every other job requires it.
    ///   - createMissingKeystore: `keystore restore` and `recover` replace a lost keystore; every other job requires it.
    ///   - readOnly: the job changes nothing (status, list, check, audit verify): it takes a shared lock.
    ///   - recovering: `recover` opens the vault it is rebuilding; every other job refuses one.
    ///   - adoptKeyring: the keyring and root are copies made for this vault (a drill, a recovery beside the original):
    ///     they are bound to it as a new keyring (§5.1).
    ///   - createMissingKeyring: `keyring rebuild` makes a new keyring when the configured one is missing.
    public init(root: String, lockWait: Double = 0, readOnly: Bool = false, createMissingCatalog: Bool = false,
                createMissingKeystore: Bool = false, recovering: Bool = false, adoptKeyring: Bool = false,
                trustAdministration: Bool = false, createMissingKeyring: Bool = false) throws {
        let root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.root = root
        self.readOnly = readOnly
        if !recovering, Posix.exists(root + "/" + Self.recoveryMarkerName) {
            throw VaultError.invalidArgument("\(root) is a vault whose `shredvault recover` was interrupted; run the same recover command again to finish it")
        }
        guard Posix.exists(Self.configPath(root)) else { throw VaultError.vaultNotFound(path: root) }
        // A read-only job needs no write access to the vault (§6): its shared lock opens the lock file read-only.
        lock = readOnly ? try FileLock(readOnlyAt: root + "/lock", wait: lockWait) : try FileLock(path: root + "/lock", wait: lockWait)
        config = try VaultConfig.parse(try Posix.readTextFile(Self.configPath(root)), path: Self.configPath(root))
        if let url = config.bundleStore {
            store = S3BundleStore(try BundleStoreURL(parsing: url))
        } else {
            store = LocalBundleStore(root: root)
        }
        archiveKey = try MasterKey.decodeArchiveKey(try Posix.readTextFile(Self.archiveKeyPath(root)), path: Self.archiveKeyPath(root))
        // G8: master.pub must be the key the restore-key holder signed the trust record with, and (for jobs that
        // write) the key the job credential outside the vault was issued under — before any key is used.
        trust = try Self.loadTrust(root: root, vaultId: config.vaultId, master: archiveKey)
        // The credential's path from the job's own environment ($SHREDVAULT_JOB_KEY) pins the vault independently of
        // the vault directory; the config's jobKeyPath is the convenient default.
        let environmentKey = ProcessInfo.processInfo.environment[Self.jobKeyVariable].flatMap { $0.isEmpty ? nil : $0 }
        if let jobKeyPath = environmentKey ?? config.jobKeyPath, !readOnly, !trustAdministration {
            guard let trust else {
                throw VaultError.bundleMismatch(path: Self.trustPath(root), reason: "the trust record is missing but a job credential is configured: it was removed or replaced; no job runs until the restore-key holder checks the vault and re-signs it (`shredvault trust init`)")
            }
            let credential = try JobCredential.read(jobKeyPath, vaultId: config.vaultId, masterKeyId: trust.masterKeyId)
            guard trust.activeSigners.contains(where: { $0.keyId == credential.keyId }) else {
                throw VaultError.bundleMismatch(path: jobKeyPath, reason: "this job credential is not (or no longer) listed in the vault's trust record (revoked by a rotation?)")
            }
            jobCredential = credential
        } else if let environmentKey, readOnly {
            // A read-only job (check, status, audit verify) whose environment names the credential checks the pin
            // too: a vault whose master.pub and trust record were both replaced then fails here instead of
            // verifying against the replacement.
            guard let trust else {
                throw VaultError.bundleMismatch(path: Self.trustPath(root), reason: "the trust record is missing but $\(Self.jobKeyVariable) names a job credential: it was removed or replaced")
            }
            _ = try JobCredential.read(environmentKey, vaultId: config.vaultId, masterKeyId: trust.masterKeyId)
            jobCredential = nil
        } else if trust != nil && !readOnly && !trustAdministration {
            throw VaultError.keyFile(path: Self.trustPath(root), reason: "this vault has a trust record: a job that changes it needs its job credential ($\(Self.jobKeyVariable)=FILE, or jobKeyPath in the config)")
        } else {
            jobCredential = nil
        }
        guard let kr = config.keyringPath else {
            throw VaultError.malformedInput(path: Self.configPath(root), line: 1, reason: "no keyringPath; this vault predates keyrings")
        }
        // Before any database is opened: an empty or foreign file would silently become a new, empty keyring.
        try Self.checkKeyringFile(kr, allowMissing: createMissingKeyring && !readOnly)
        keyringCreated = !Posix.exists(kr)
        if keyringCreated {
            let directory = Posix.directoryName(kr)
            guard let st = try Posix.status(directory), st.kind == .directory else { throw VaultError.notFound(path: directory, what: "keyring directory") }
        }
        catalog = try Catalog(path: root + "/catalog.db", create: createMissingCatalog, readOnly: readOnly)
        let ks = config.keystorePath.hasPrefix("/") ? config.keystorePath : root + "/" + config.keystorePath
        if !createMissingKeystore { guard Posix.exists(ks) else { throw VaultError.notFound(path: ks, what: "keystore") } }
        try Posix.makeDirectories(Posix.directoryName(ks), mode: 0o700)
        keystore = try Keystore(path: ks, readOnly: readOnly)
        keyring = try Keystore(path: kr, kind: .keyring, readOnly: readOnly)
        destructionRoot = try Self.openRoot(config)
        attachRatchets()
        // Every write transaction that appends audit records also appends their signed head (§6.2).
        catalog.auditHeadSigner = AuditHeadSigner(vaultId: config.vaultIdBytes) { [weak self] body in
            guard let self else { throw VaultError.invalidArgument("internal error: the vault was released before its catalog") }
            return try self.signAuditHead(body)
        }
        try bindKeyring(adopt: adoptKeyring, recovering: recovering)
    }

    /// Ends the job: closes the catalog (after a checkpoint, unless the job was read-only), the keystore and the
    /// keyring, reporting any failure. The vault must not be used afterwards.
    public func close() throws {
        try catalog.close(checkpoint: !readOnly)
        try keystore.close()
        try keyring.close()
    }

    public struct InitResult: Sendable {
        public var root: String
        public var vaultId: String
        public var createdRestoreKey: Bool
        public var restoreKeyPath: String
        public var keyringPath: String
        /// Where the destruction root is (a file path, or the token).
        public var destructionRoot: String
        /// The job credential (§3.9), for `$SHREDVAULT_JOB_KEY`.
        public var jobKeyPath: String
    }

    /// Creates a vault. If the restore key file is absent, creates the master key pair (restore key to that file,
    /// mode 0600); otherwise derives the archive key from the existing restore key.
    /// - Parameter rootConfig: where the destruction root lives (§3.7); default a root file beside the keyring.
    /// - Parameter drill: make a drill vault (its clock is free, §6.4); a production vault otherwise, whose jobs are
    ///   checked against the latest time a job ran, starting with `now`.
    public static func create(root: String, restoreKeyPath: String, policy: RetentionPolicy, keystorePath: String? = nil,
                              keyringPath: String? = nil, rootConfig: RootConfig? = nil, drill: Bool = false, bundleStore: String? = nil,
                              now: Int64) throws -> InitResult {
        if let problem = policy.problem { throw VaultError.invalidArgument(problem) }
        // An S3 bundle store must answer (endpoint, credentials, bucket) before anything is created (§6.5).
        let storeURL = try bundleStore.map { try BundleStoreURL(parsing: $0) }
        if let storeURL { try S3BundleStore(storeURL).probe() }
        guard Timestamp.isRepresentable(now) else {
            throw VaultError.invalidArgument("the clock \(Timestamp.format(now)) is outside 1970-01-01 to 9999-12-31, the days a vault can hold")
        }
        if Posix.exists(configPath(root)) { throw VaultError.vaultExists(path: root) }
        let absoluteRoot = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        let absoluteKey = restoreKeyPath.hasPrefix("/") ? restoreKeyPath : FileManager.default.currentDirectoryPath + "/" + restoreKeyPath
        if absoluteKey.hasPrefix(absoluteRoot + "/") {
            throw VaultError.invalidArgument("the restore key must live outside the vault directory (\(restoreKeyPath) is inside \(root))")
        }
        // init issues the new vault's own job credential: a $SHREDVAULT_JOB_KEY naming another one (another vault's,
        // from a job environment) would make the new vault's first job refuse it half-way.
        if let named = ProcessInfo.processInfo.environment[jobKeyVariable], !named.isEmpty {
            throw VaultError.invalidArgument("$\(jobKeyVariable) is set (\(named)), but init issues the new vault's own job credential: unset it for init, then point it at the credential init prints")
        }
        if let st = try Posix.status(root) {
            guard st.kind == .directory, try Posix.listDirectory(root).isEmpty else {
                throw VaultError.invalidArgument("\(root) exists and is not an empty directory; choose a new vault directory")
            }
            // Whoever may write to the vault directory can replace its files (§6): refuse rather than inherit that.
            guard st.mode & 0o022 == 0 else {
                throw VaultError.invalidArgument("\(root) is writable by group or others (mode \(String(st.mode & 0o777, radix: 8))); run `chmod 700 \(root)` or choose another directory")
            }
        }
        let rootExisted = Posix.exists(root)
        let created = !Posix.exists(restoreKeyPath)
        var createdKeyring: String?
        var createdRoot: String?
        var createdJobKey: String?
        do {
            return try createContents(root: root, restoreKeyPath: restoreKeyPath, createRestoreKey: created, absoluteRoot: absoluteRoot,
                                      absoluteKey: absoluteKey, policy: policy, keystorePath: keystorePath, keyringPath: keyringPath,
                                      rootConfig: rootConfig, drill: drill, bundleStore: storeURL?.description, now: now, createdKeyring: &createdKeyring, createdRoot: &createdRoot,
                                      createdJobKey: &createdJobKey)
        } catch {
            // Nothing half-made stays behind: the vault directory's contents, a keyring and a restore key made here.
            if rootExisted {
                for name in (try? Posix.listDirectory(root)) ?? [] { try? Posix.removeTree(root + "/" + name) }
            } else {
                try? Posix.removeTree(root)
            }
            if let createdKeyring { _ = unlink(createdKeyring); _ = unlink(createdKeyring + "-journal") }
            if let createdRoot { _ = unlink(createdRoot) }
            if let createdJobKey { _ = unlink(createdJobKey) }
            if created { _ = unlink(restoreKeyPath) }
            throw error
        }
    }

    private static func createContents(root: String, restoreKeyPath: String, createRestoreKey created: Bool, absoluteRoot: String,
                                       absoluteKey: String, policy: RetentionPolicy, keystorePath: String?, keyringPath: String?,
                                       rootConfig: RootConfig?, drill: Bool, bundleStore: String?, now: Int64, createdKeyring: inout String?,
                                       createdRoot: inout String?, createdJobKey: inout String?) throws -> InitResult {
        try Posix.makeDirectories(root, mode: 0o700)
        try Posix.setPermissions(root, 0o700)  // an existing empty directory becomes private too
        let master = created ? try MasterKey.createRestoreKey(restoreKeyPath) : try MasterKey.readRestoreKey(restoreKeyPath)
        let vaultId = Hex.encode(try SecureRandom.bytes(count: 16))
        // The keyring lives beside the restore key by default, never inside the vault directory.
        let keyring = keyringPath ?? (Posix.directoryName(absoluteKey) + "/shredvault-keyring-" + vaultId.prefix(8) + ".db")
        let absoluteKeyring = keyring.hasPrefix("/") ? keyring : FileManager.default.currentDirectoryPath + "/" + keyring
        if absoluteKeyring.hasPrefix(absoluteRoot + "/") {
            throw VaultError.invalidArgument("the keyring must live outside the vault directory (\(keyring) is inside \(root))")
        }
        if Posix.exists(absoluteKeyring) { throw VaultError.targetExists(path: absoluteKeyring) }
        let keyringDirectory = Posix.directoryName(absoluteKeyring)
        guard let kst = try Posix.status(keyringDirectory), kst.kind == .directory else {
            throw VaultError.notFound(path: keyringDirectory, what: "keyring directory")
        }
        createdKeyring = absoluteKeyring
        // The destruction root (§3.7): software mode makes a root file, by default beside the keyring.
        var rootSetting = rootConfig ?? .file(keyringDirectory + "/shredvault-root-" + vaultId.prefix(8))
        if rootSetting.kind == "file" {
            let path = rootSetting.path ?? ""
            let absolutePath = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            if absolutePath.hasPrefix(absoluteRoot + "/") {
                throw VaultError.invalidArgument("the destruction root must live outside the vault directory (\(path) is inside \(root))")
            }
            if Posix.exists(absolutePath) { throw VaultError.targetExists(path: absolutePath) }
            rootSetting.path = absolutePath
            _ = try RootFile.create(path: absolutePath)
            createdRoot = absolutePath
        } else if rootSetting.kind == "pkcs11" {
            func absolute(_ p: String?) -> String? { p.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 } }
            rootSetting.module = absolute(rootSetting.module)
            rootSetting.pinFile = absolute(rootSetting.pinFile)
        } else {
            throw VaultError.invalidArgument("unknown destruction root kind '\(rootSetting.kind)'")
        }
        let ksRelative = keystorePath ?? "keys/keystore.db"
        let ksPath = ksRelative.hasPrefix("/") ? ksRelative : root + "/" + ksRelative
        try Posix.makeDirectories(Posix.directoryName(ksPath), mode: 0o700)
        try Posix.setPermissions(Posix.directoryName(ksPath), 0o700)
        try Posix.makeDirectories(root + "/" + (bundleStore == nil ? "bundles" : stagingDirectory + "/bundles"), mode: 0o700)
        // The databases are created empty with mode 0600 before SQLite opens them: SQLite would make them 0644 (less
        // the umask), and gives its journal, WAL and shared-memory files the database file's mode.
        if Posix.exists(ksPath) { throw VaultError.targetExists(path: ksPath) }
        for database in [ksPath, absoluteKeyring, root + "/catalog.db"] { try Posix.createPrivateFile(database) }
        _ = try Keystore(path: ksPath)
        _ = try Keystore(path: absoluteKeyring, kind: .keyring)
        _ = try Catalog(path: root + "/catalog.db", create: true)
        try Posix.writeFileAtomically(archiveKeyPath(root), Array(MasterKey.encodeArchiveKey(master.publicKey).utf8), mode: 0o644)
        var config = VaultConfig(format: VaultConfig.formatName, vaultId: vaultId, createdAt: now, keystorePath: ksRelative,
                                 keyringPath: absoluteKeyring, policy: policy, root: rootSetting, drill: drill ? true : nil,
                                 bundleStore: bundleStore)
        // G8: the trust record, signed by the restore key, and the job credential beside the keyring (§3.9).
        let jobKeyPath = defaultJobKeyPath(keyringPath: absoluteKeyring, vaultId: vaultId)
        if Posix.exists(jobKeyPath) { throw VaultError.targetExists(path: jobKeyPath) }
        _ = try issueTrust(root: root, config: config, restoreKey: master, jobKeyPath: jobKeyPath, previous: nil, auditSignedFrom: 1, now: now)
        createdJobKey = jobKeyPath
        config.jobKeyPath = jobKeyPath
        // The config is written last: its presence marks a complete vault.
        try writeConfig(config, root: root)
        let vault = try Vault(root: root)
        try vault.convergeRoot()
        // A production vault's clock guard starts here (§6.4); a drill's clock is free.
        if !drill { try vault.keyring.setLatestJobTime(now) }
        try vault.catalog.write { db in
            var detail = [
                "vaultId": vaultId, "archiveDays": String(policy.archiveDays), "inactiveDays": String(policy.inactiveDays),
                "masterKeyId": Hex.encode(try KeyHierarchy.keyId(master.publicKey)),
            ]
            if drill { detail["drill"] = "yes" } else { try Catalog.setMeta(db, Vault.latestJobTimeMeta, String(now)) }
            try Catalog.audit(db, at: now, action: "init", user: nil, detail: detail)
        }
        return InitResult(root: root, vaultId: vaultId, createdRestoreKey: created, restoreKeyPath: restoreKeyPath, keyringPath: absoluteKeyring,
                          destructionRoot: vault.destructionRoot?.location ?? "", jobKeyPath: vault.config.jobKeyPath ?? "")
    }

    /// Reads the restore key and checks it is this vault's master key.
    public func restoreKey(path: String?) throws -> P256PrivateKey {
        guard let path, !path.isEmpty else { throw VaultError.restoreKeyRequired }
        let key = try MasterKey.readRestoreKey(path)
        guard key.publicKey == archiveKey else { throw VaultError.wrongRestoreKey }
        return key
    }

    /// `bundles/YYYY/MM/DD/<id>.svb`, relative to the vault root.
    public static func bundleLocation(expiry: CivilDay, bundleId: String) -> String {
        let c = expiry.iso.split(separator: "-")
        return "bundles/\(c[0])/\(c[1])/\(c[2])/\(bundleId).svb"
    }

    public func absolute(_ location: String) -> String {
        // A remote store's bundles are staged (written, verified, fetched) in a private directory beside the catalog.
        if !store.isLocal, location.hasPrefix("bundles/") { return root + "/" + Self.stagingDirectory + "/" + location }
        return root + "/" + location
    }

    /// The private staging directory of a vault whose bundles live in object storage (§6.5).
    public static let stagingDirectory = "staging"

    /// Writes the erasure ledger (catalog and keyring mirror) for keys about to be destroyed, with the audit
    /// record of each destruction in the same catalog transaction. Must precede every destruction, so a restored
    /// keystore copy can be purged of them (ledger replay). A key already in the ledger (a retried destruction)
    /// gets no second audit record.
    func recordErasures(_ keys: [StoredKey], now: Int64, reason: String) throws {
        guard !keys.isEmpty else { return }
        try catalog.write { db in
            for k in keys where try Catalog.recordErasure(db, k, at: now, reason: reason) {
                var detail = ["role": k.role.rawValue, "reason": reason]
                var user: String?
                switch k.role {
                case .day: detail["day"] = k.subject
                case .user: user = k.subject
                case .hold: detail["case"] = k.subject
                case .epoch: detail["epoch"] = k.subject
                }
                try Catalog.audit(db, at: now, action: "destroy-key", user: user, detail: detail)
            }
        }
        try keyring.recordErasures(keys, at: now, reason: reason)
    }
}
