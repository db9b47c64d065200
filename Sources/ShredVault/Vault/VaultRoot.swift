import Foundation
import VaultCrypto

extension Vault {
    /// The root file's default place: beside the keyring (outside the vault, next to the restore key's directory).
    static func defaultRootPath(_ config: VaultConfig) -> String {
        Posix.directoryName(config.keyringPath ?? "/nonexistent") + "/shredvault-root-" + config.vaultId.prefix(8)
    }

    /// Opens the configured root; nil for a vault made before the ratchet whose root file does not exist yet.
    static func openRoot(_ config: VaultConfig) throws -> DestructionRoot? {
        switch config.root?.kind {
        case nil:
            let path = defaultRootPath(config)
            return Posix.exists(path) ? try RootFile(path: path) : nil
        case "file":
            guard let path = config.root?.path else {
                throw VaultError.malformedInput(path: configPath("."), line: 1, reason: "root of kind file without a path")
            }
            guard Posix.exists(path) else {
                throw VaultError.notFound(path: path, what: "destruction root file (without it no key of this vault opens; restore it from where you keep it)")
            }
            return try RootFile(path: path)
        case "pkcs11":
            return try PKCS11Root.open(config)
        case let other?:
            throw VaultError.malformedInput(path: configPath("."), line: 1, reason: "unknown destruction root kind '\(other)'; upgrade shredvault")
        }
    }

    func attachRatchets() {
        keystore.ratchet = KeystoreRatchet(root: destructionRoot, vaultId: vaultId)
        keyring.ratchet = KeystoreRatchet(root: destructionRoot, vaultId: vaultId)
    }

    /// Brings the keystore, the keyring and the root to one generation (vault-format.md §3.7): creates the root and
    /// ratchets a vault made before it (the upgrade in place), reseals a database an interrupted destruction left on
    /// the previous generation, and destroys every other generation. Idempotent; every mutating job runs it first.
    public func convergeRoot() throws {
        if destructionRoot == nil {
            destructionRoot = try RootFile.create(path: config.root?.path ?? Self.defaultRootPath(config))
            attachRatchets()
            try reached("migrate:root-file")
        }
        guard let root = destructionRoot else { return }
        let referenced = [try keystore.ratchetGeneration(), try keyring.ratchetGeneration()].compactMap { $0 }
        let present = try root.generations()
        let target = referenced.max() ?? present.max() ?? 1
        if !present.contains(target) {
            if referenced.contains(target) {
                throw VaultError.unrecoverable(user: "(every user)", date: "an earlier date",
                                               reason: "destruction root generation \(target), which the keystore needs, is missing from \(root.location)")
            }
            try root.create(generation: target)
        }
        for store in [keystore, keyring] {
            switch try store.ratchetGeneration() {
            case nil:
                try store.migrateToRatchet(generation: target)
                try reached("migrate:\(store.kind)")
            case target?:
                break
            default:
                try store.rotate(to: target, destroying: [])
            }
        }
        for g in try root.generations() where g != target { try root.destroy(generation: g) }
        if config.root == nil {
            config.root = .file(root.location)
            try Self.writeConfig(config, root: self.root)
        }
    }

    /// Destroys keys so that no copy of any file opens them again (G7): a new root generation, the keys deleted and
    /// their buckets rekeyed in `store`, the other database resealed, then the old generation destroyed. A crash at
    /// any point is finished by `convergeRoot`. Returns the new root generation, the only one left (nil in a vault
    /// without a destruction root, or when there was nothing to destroy); deletion receipts name it (§6.3).
    @discardableResult
    func destroyKeys(_ ids: [[UInt8]], in store: Keystore) throws -> UInt64? {
        guard !ids.isEmpty else { return nil }
        guard let root = destructionRoot, let current = try store.ratchetGeneration() else {
            try store.destroy(keyIds: ids)
            return nil
        }
        let next = max(current, try root.generations().max() ?? current) + 1
        try root.create(generation: next)
        try reached("destroy:root-created")
        try store.rotate(to: next, destroying: ids)
        try reached("destroy:rotated")
        try (store === keystore ? keyring : keystore).rotate(to: next, destroying: [])
        try reached("destroy:resealed")
        for g in try root.generations() where g != next { try root.destroy(generation: g) }
        return next
    }

    static func writeConfig(_ config: VaultConfig, root: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Posix.writeFileAtomically(configPath(root), Array(try encoder.encode(config)) + [0x0a], mode: 0o644)
    }
}
