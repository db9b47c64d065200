import Foundation
import GRDB

/// What `shredvault drill` made.
public struct DrillReport: Sendable, Codable {
    /// The drill vault (`DIR/vault`).
    public var vault: String
    /// The production vault it was copied from (only read).
    public var from: String
    public var vaultId: String
    /// The drill's own copies of the keyring and the destruction root (in `DIR`).
    public var keyringPath: String
    public var rootPath: String?
    public var liveBundles: Int
    public var drill = true
}

extension Vault {
    /// Makes a drill copy of the vault at `source` in the new directory `directory` (vault-format.md §6.4): the vault
    /// directory as `DIR/vault`, and copies of the keyring and the destruction root file in `DIR`, bound to the drill.
    /// The production vault is only read, under its shared lock (no job changes it meanwhile): its keyring and root
    /// are never opened for writing, so nothing the drill does — sweeps on a simulated clock, deletions, key
    /// destructions that retire the drill's root generations — reaches them. A vault whose root is in a PKCS#11 token
    /// cannot be copied (its root keys are not extractable). On failure nothing is left of `directory`.
    public static func makeDrill(from source: String, to directory: String, lockWait: Double = 0, now: Int64) throws -> DrillReport {
        let source = source.count > 1 && source.hasSuffix("/") ? String(source.dropLast()) : source
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        if Posix.exists(source + "/" + recoveryMarkerName) {
            throw VaultError.invalidArgument("\(source) is a vault whose `shredvault recover` was interrupted; finish it first")
        }
        guard Posix.exists(configPath(source)) else { throw VaultError.vaultNotFound(path: source) }
        if let st = try Posix.status(dir) {
            guard st.kind == .directory, try Posix.listDirectory(dir).isEmpty else { throw VaultError.targetExists(path: dir) }
        }
        let createdDirectory = !Posix.exists(dir)
        let absoluteDir = (createdDirectory ? nil : Posix.realPath(dir)) ?? (dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir)
        if let from = Posix.realPath(source), absoluteDir == from || absoluteDir.hasPrefix(from + "/") {
            throw VaultError.invalidArgument("the drill directory must lie outside the vault \(source)")
        }
        do {
            return try makeDrillContents(source: source, dir: dir, absoluteDir: absoluteDir, lockWait: lockWait, now: now)
        } catch {
            if createdDirectory { try? Posix.removeTree(dir) } else { for name in (try? Posix.listDirectory(dir)) ?? [] { try? Posix.removeTree(dir + "/" + name) } }
            throw error
        }
    }

    private static func makeDrillContents(source: String, dir: String, absoluteDir: String, lockWait: Double, now: Int64) throws -> DrillReport {
        var config: VaultConfig
        let drillVault = dir + "/vault"
        let drillKeyring: String, drillRoot: String?
        do {
            // The production vault's shared lock: read-only jobs go on, no job changes it while it is copied.
            let lock = try FileLock(path: source + "/lock", wait: lockWait, shared: true)
            defer { withExtendedLifetime(lock) {} }
            config = try VaultConfig.parse(try Posix.readTextFile(configPath(source)), path: configPath(source))
            if let store = config.bundleStore {
                // A copy would share the bucket: its sweeps and deletions would remove the vault's own objects (§6.5).
                throw VaultError.invalidArgument("a drill of a vault whose bundles are in object storage (\(store)) is not supported yet")
            }
            guard let keyringPath = config.keyringPath else {
                throw VaultError.malformedInput(path: configPath(source), line: 1, reason: "no keyringPath; this vault predates keyrings")
            }
            try checkKeyringFile(keyringPath)
            let rootPath: String?
            switch config.root?.kind {
            case "file"?: rootPath = config.root?.path
            case nil: rootPath = Posix.exists(defaultRootPath(config)) ? defaultRootPath(config) : nil
            default:
                throw VaultError.invalidArgument("the destruction root of \(source) is in a PKCS#11 token, whose keys cannot be copied: drill from a backup with `shredvault recover --drill` into a vault with its own root file instead")
            }
            if let rootPath, !Posix.exists(rootPath) {
                throw VaultError.notFound(path: rootPath, what: "destruction root file (without it no key of this vault opens; restore it from where you keep it)")
            }
            let name = String(config.vaultId.prefix(8))
            drillKeyring = absoluteDir + "/shredvault-keyring-\(name).db"
            drillRoot = rootPath.map { _ in absoluteDir + "/shredvault-root-\(name)" }
            try Posix.makeDirectories(dir, mode: 0o700)
            try copyTree(source, to: drillVault)
            if config.keystorePath.hasPrefix("/") {
                try Posix.makeDirectories(drillVault + "/keys", mode: 0o700)
                try copyDatabase(config.keystorePath, to: drillVault + "/keys/keystore.db")
                config.keystorePath = "keys/keystore.db"
            }
            try copyDatabase(keyringPath, to: drillKeyring)
            if let rootPath, let drillRoot { try copyFileStatic(rootPath, to: drillRoot) }
        }
        // From here on only the drill's files are written.
        config.keyringPath = drillKeyring
        if let drillRoot { config.root = .file(drillRoot) }
        config.drill = true
        try writeConfig(config, root: drillVault)
        let vault = try Vault(root: drillVault, lockWait: lockWait, adoptKeyring: true)
        let from = Posix.realPath(source) ?? source
        let liveBundles = try vault.catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bundles WHERE state = 'live'") ?? 0 }
        try vault.catalog.write { db in
            try Catalog.audit(db, at: now, action: "drill", user: nil, detail: ["from": from, "keyring": drillKeyring])
        }
        try vault.close()
        return DrillReport(vault: absoluteDir + "/vault", from: from, vaultId: config.vaultId, keyringPath: drillKeyring, rootPath: drillRoot,
                           liveBundles: liveBundles)
    }

    /// Copies a vault directory's regular files (not its lock, nor SQLite's shared-memory index) into a new directory.
    private static func copyTree(_ source: String, to destination: String) throws {
        try Posix.makeDirectories(destination, mode: 0o700)
        for name in try Posix.listDirectory(source) where name != "lock" && !name.hasSuffix("-shm") {
            let from = source + "/" + name, to = destination + "/" + name
            guard let st = try Posix.status(from) else { continue }
            switch st.kind {
            case .directory: try copyTree(from, to: to)
            case .regular: try copyFileStatic(from, to: to)
            default: throw VaultError.invalidArgument("\(from) is neither a file nor a directory; a vault holds none such (see `shredvault check`)")
            }
        }
    }

    /// Copies a SQLite database file with its rollback journal, if one is left.
    private static func copyDatabase(_ source: String, to destination: String) throws {
        try copyFileStatic(source, to: destination)
        if Posix.exists(source + "-journal") { try copyFileStatic(source + "-journal", to: destination + "-journal") }
    }
}
