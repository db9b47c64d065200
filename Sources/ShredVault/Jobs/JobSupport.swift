#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto

/// Progress callback for long jobs: (done, total, current item, bytes processed so far — 0 when the job does not
/// count them). The CLI shows it on a TTY only.
public typealias ProgressHandler = (_ done: Int, _ total: Int, _ item: String, _ bytes: Int64) -> Void

extension BundleRecord {
    /// The header fields a sealed DEK is bound to, reconstructed from the catalog row.
    func binding(vaultId: [UInt8]) throws -> KeyHierarchy.Binding {
        guard let bundleId = Hex.decode(id), let user = UserID(userId) else {
            throw VaultError.bundleMismatch(path: location, reason: "catalog row has a malformed bundle or user id")
        }
        let header = BundleHeader(vaultId: vaultId, bundleId: bundleId, createdAt: archivedAt,
                                  expiryDay: CivilDay(daysSinceEpoch: originalExpiryDay), userKeyId: Array(userKeyId),
                                  dayKeyId: BundleHeader.zeroId, userId: user)
        return KeyHierarchy.Binding(header: header)
    }
}

extension Vault {
    /// Opens a stored key pair's private half with the restore key.
    /// - Parameter cache: shares unsealed keys between users of one job (a case's hold key, a day key).
    /// `stored`: the key's keystore row when the caller already read it (else it is read here).
    func privateKey(role: KeyRole, id: Data?, restoreKey: P256PrivateKey, user: String, cache: PrivateKeyCache? = nil,
                    stored prefetched: StoredKey? = nil) throws -> P256PrivateKey {
        if let id, let cached = cache?.key(id) { return cached }
        guard let id, let stored = try prefetched ?? keystore.key(id: Array(id)), stored.role == role else {
            throw VaultError.unrecoverable(user: user, date: "an earlier date", reason: "\(role.rawValue) key missing from the keystore")
        }
        let key = try keystore.privateKey(stored, restoreKey: restoreKey, vaultId: vaultId)
        cache?.store(key, for: id)
        return key
    }

    /// Checks that the bundle file is the one the catalog describes (same bytes, and its header names the same
    /// vault, bundle and user) and, in a vault with a trust record, that its signatures verify (§3.10), before any key
    /// is used on it.
    ///
    /// In a vault whose bundles are objects (§6.5) the object is first streamed to a private file under `staging/read/`,
    /// whose path is returned: the caller removes it with `discardFetched` when done with it.
    func checkBundleFile(_ record: BundleRecord, hash: Bool = true) throws -> String {
        if store.isLocal { return try checkBundleFile(record, at: absolute(record.location), hash: hash) }
        guard let path = try fetchForReading(record.location) else {
            throw VaultError.notFound(path: (store.url ?? "") + "/" + record.location.dropFirst("bundles/".count), what: "bundle object")
        }
        do { return try checkBundleFile(record, at: path, hash: hash) } catch {
            discardFetched(path)
            throw error
        }
    }

    /// Size, header and signature checks without the SHA-256 (`hold place|release`, G8): a remote store's object
    /// is not downloaded (HeadObject and a ranged GET of its signed prefix, §6.5).
    func checkBundleWithoutHash(_ record: BundleRecord) throws {
        if store.isLocal { _ = try checkBundleFile(record, hash: false) } else { try checkBundleObjectQuickly(record) }
    }

    /// `check --quick` of a bundle in a remote store (§6.5): its size from HeadObject and its signed prefix from one
    /// ranged GetObject, checked as `checkBundleFile(_:hash: false)` checks a local file, without downloading it.
    func checkBundleObjectQuickly(_ record: BundleRecord) throws {
        let name = (store.url ?? "") + "/" + record.location.dropFirst("bundles/".count)
        guard let (size, bytes) = try store.head(location: record.location, prefixLength: BundleReader.signedPrefixMaxLength) else {
            throw VaultError.notFound(path: name, what: "bundle object")
        }
        guard size == UInt64(record.size) else {
            throw VaultError.bundleMismatch(path: name, reason: "it is \(size) bytes, the catalog says \(record.size) (truncated or replaced)")
        }
        let (header, prefix) = try BundleReader.signedPrefix(of: bytes, path: name)
        try checkBundleHeader(record, header: header, prefix: prefix, path: name)
    }

    private func checkBundleFile(_ record: BundleRecord, at path: String, hash: Bool) throws -> String {
        guard let st = try Posix.status(path) else { throw VaultError.notFound(path: path, what: "bundle file") }
        guard st.size == record.size else {
            throw VaultError.bundleMismatch(path: path, reason: "it is \(st.size) bytes, the catalog says \(record.size) (truncated or replaced)")
        }
        let (header, prefix) = try BundleReader.readSignedPrefix(path: path)
        try checkBundleHeader(record, header: header, prefix: prefix, path: path)
        if !hash { return path }
        let digest = try fileSHA256(path)
        guard let expected = record.sha256, Array(expected) == digest else {
            throw VaultError.bundleMismatch(path: path, reason: "its SHA-256 differs from the catalog (modified or replaced)")
        }
        return path
    }

    /// The header and signature checks every read of a bundle makes before a key is used (§3.10).
    private func checkBundleHeader(_ record: BundleRecord, header: BundleHeader, prefix: [UInt8], path: String) throws {
        guard header.vaultId == vaultId else {
            throw VaultError.bundleMismatch(path: path, reason: "it belongs to vault \(header.vaultIdHex), not this vault")
        }
        // Bytes, not Strings: canonically equivalent spellings (a Kelvin sign for "K") are other ids.
        guard header.bundleIdHex.utf8.elementsEqual(record.id.utf8), header.userId.rawValue.utf8.elementsEqual(record.userId.utf8) else {
            throw VaultError.bundleMismatch(path: path, reason: "its header names bundle \(header.bundleIdHex) of user \(header.userId), not bundle \(record.id) of user \(record.userId) (a bundle moved to another path?)")
        }
        guard Array(header.userKeyId) == Array(record.userKeyId), header.expiryDay.daysSinceEpoch == record.originalExpiryDay else {
            throw VaultError.bundleMismatch(path: path, reason: "its key id or expiry day differs from the catalog")
        }
        try verifyProvenance(record, prefix: prefix)
    }

    /// SHA-256 of a whole file.
    func fileSHA256(_ path: String) throws -> [UInt8] {
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        let hash = try SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try file.read(into: buffer)
            if n == 0 { break }
            try hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return try hash.finalize()
    }

    /// Removes a bundle file if present; fsyncs its directory.
    func removeBundleFile(_ location: String) throws { try removeBundleFiles([location]) }

    /// Removes bundle files (and their DEK sidecars) that are present, then fsyncs each affected directory once.
    /// In a vault whose bundles are objects (§6.5) the objects are deleted too (DeleteObjects, batched), and any
    /// staging copies.
    func removeBundleFiles(_ locations: [String]) throws {
        if !store.isLocal {
            try store.remove(locations.flatMap { [$0, DEKSidecar.location(forBundle: $0)] })
        }
        var directories = Set<String>()
        for location in locations {
            for path in [absolute(location), absolute(DEKSidecar.location(forBundle: location))] where try Posix.unlinkIfPresent(path) {
                directories.insert(Posix.directoryName(path))
            }
        }
        for d in directories.sorted() { try Posix.syncDirectory(d) }
    }

    /// Writes (or replaces) a bundle's DEK sidecar atomically.
    func writeSidecar(bundleLocation: String, _ sidecar: DEKSidecar, syncDirectory: Bool = true) throws {
        if !store.isLocal {
            // Staged, uploaded, read back and checked (§6.5), then the staging copy goes.
            let location = DEKSidecar.location(forBundle: bundleLocation)
            let bytes = try sidecar.encoded()
            let staged = absolute(location)
            try Posix.makeDirectories(Posix.directoryName(staged), mode: 0o700)
            try Posix.writeFileAtomically(staged, bytes, mode: 0o600, syncDirectory: false)
            defer { _ = try? Posix.unlinkIfPresent(staged) }
            try store.put(location: location, from: staged, sha256: try SHA256.hash(bytes))
            return
        }
        try Posix.writeFileAtomically(absolute(DEKSidecar.location(forBundle: bundleLocation)), sidecar.encoded(), mode: 0o600,
                                      syncDirectory: syncDirectory)
    }

    /// `writeSidecar` without fsyncs, for a grouped sync (archive).
    func writeSidecarDeferringSync(bundleLocation: String, _ sidecar: DEKSidecar) throws -> PendingSync {
        try Posix.writeFileDeferringSync(absolute(DEKSidecar.location(forBundle: bundleLocation)), sidecar.encoded(), mode: 0o600)
    }
}

/// Private keys unsealed during one job, by key id, shared by its worker threads; released (and zeroed by
/// their owners) when the job ends.
final class PrivateKeyCache: @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [Data: P256PrivateKey] = [:]

    func key(_ id: Data) -> P256PrivateKey? {
        lock.lock()
        defer { lock.unlock() }
        return keys[id]
    }

    func store(_ key: P256PrivateKey, for id: Data) {
        lock.lock()
        defer { lock.unlock() }
        keys[id] = key
    }
}
