import Foundation

extension Vault {
    /// The names `backup --to` writes at the top of a backup directory (vault-format.md §5.4), and the temporary
    /// names an interrupted run may leave there.
    static func isBackupEntry(_ name: String) -> Bool {
        ["backup.json", "config", "master.pub", "trust", "catalog.db", "bundles"].contains(name)
            || (name.hasPrefix("keystore-") && name.hasSuffix(".svks")) || isTemporaryName(name)
    }

    /// Refuses, before the backup changes anything (in the vault or in the directory), a directory that is anything
    /// but new, empty, or a backup of this vault (possibly an interrupted one): this vault's own directory or one inside
    /// it, a live vault of any vault, another vault's backup, a file, or a directory holding anything a backup does
    /// not write. Each refusal is `backupTargetRefused` naming what was found.
    func checkBackupTarget(_ dir: String) throws {
        func refuse(_ reason: String) -> VaultError { .backupTargetRefused(path: dir, reason: reason) }
        let target = Self.resolvedPath(dir), vault = Self.resolvedPath(root)
        if target == vault { throw refuse("it is this vault's own directory") }
        if target.hasPrefix(vault + "/") { throw refuse("it is inside this vault's directory \(root)") }
        guard let st = try Posix.status(target) else { return }
        guard st.kind == .directory else { throw refuse("it exists and is not a directory") }
        let names = try Posix.listDirectory(target)
        if names.isEmpty { return }
        if names.contains("backup.json") {
            // A manifest that is not valid JSON of its kind is bad data, named like the vault's own files (exit 65).
            let manifest = try BackupManifest.read(target + "/backup.json")
            guard manifest.format == BackupManifest.formatName else {
                throw refuse("its backup.json is not a manifest of \(BackupManifest.formatName)")
            }
            guard manifest.vaultId == config.vaultId else {
                throw refuse("it holds a backup of vault \(manifest.vaultId), not of this vault (\(config.vaultId))")
            }
        }
        if names.contains("config") {
            // A vault's directory, another vault's backup without its manifest, or this vault's first backup interrupted
            // before its manifest (which a rerun finishes). Beside this vault's manifest, a damaged copy is rewritten.
            do {
                let other = try VaultConfig.parse(try Posix.readTextFile(target + "/config", maxLength: 1 << 20), path: target + "/config")
                if !names.contains("backup.json"), names.contains("lock") || names.contains("keys") {
                    throw refuse("it is the directory of the live vault \(other.vaultId)")
                }
                guard other.vaultId == config.vaultId else {
                    throw refuse("it holds the config of vault \(other.vaultId), not of this vault (\(config.vaultId))")
                }
            } catch let error as VaultError {
                if case .backupTargetRefused = error { throw error }
                if !names.contains("backup.json") { throw refuse("it holds a config that is not one of this vault (\(error))") }
            }
        }
        if let unknown = names.first(where: { !Self.isBackupEntry($0) }) {
            throw refuse("it is not empty and holds '\(unknown)', which no backup of this vault writes")
        }
    }

    /// An absolute path with `.`, `..` and symbolic links resolved as far as it exists; the part that does not exist yet
    /// is appended as given.
    static func resolvedPath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var head = URL(fileURLWithPath: absolute).standardized.path
        var tail: [String] = []
        while head != "/" && !Posix.exists(head) {
            tail.insert(Posix.baseName(head), at: 0)
            head = Posix.directoryName(head)
        }
        let resolved = Posix.realPath(head) ?? head
        return ([resolved == "/" ? "" : resolved] + tail).joined(separator: "/")
    }
}
