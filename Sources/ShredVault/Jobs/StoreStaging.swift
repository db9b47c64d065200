import Foundation
import GRDB
import VaultCrypto
import VaultS3

/// Private local copies of a remote store's objects (vault-format.md §6.5). Archive seals into `staging/bundles/…`
/// (`Vault.absolute`) and uploads from there; readers stream an object into `staging/read/<random>-<name>` and
/// remove it when done. Every mutating job's `converge` removes whatever an interrupted job left in `staging/`.
extension Vault {
    var stagingRoot: String { root + "/" + Self.stagingDirectory }

    /// A staged file (`absolute(location)`) to upload and read back, with the SHA-256 the object must hash to.
    struct StagedUpload: Sendable {
        var location: String
        var sha256: [UInt8]
        var size: Int64
    }

    /// Small objects (one PutObject each) uploaded and read back at once: the store's per-request latency, not its
    /// bandwidth, bounds a job of many small bundles. Each holds its whole body, so memory ≤ this × the part size.
    static let concurrentSmallUploads = 6

    /// `store.put` of every staged file (each uploaded, then read back in full and hashed against its SHA-256: G4
    /// against the store, §6.5). Objects of at most one part go `concurrentSmallUploads` at a time; larger ones one
    /// after the other, each with its parts in flight. Returns when all are verified; throws the first failure
    /// (after the uploads already started have ended; none is committed, so convergence removes them).
    func uploadStaged(_ uploads: [StagedUpload]) throws {
        let small = uploads.filter { $0.size <= Int64(S3BundleStore.partSize) }
        let large = uploads.filter { $0.size > Int64(S3BundleStore.partSize) }
        let store = self.store
        try BlockingWorkers.forEach(small.count, workers: Self.concurrentSmallUploads) { [self] index, _ in
            let u = small[index]
            try store.put(location: u.location, from: absolute(u.location), sha256: u.sha256)
        }
        for u in large { try store.put(location: u.location, from: absolute(u.location), sha256: u.sha256) }
    }

    /// Streams `location` to a new private file and returns its path; nil when the store has no such object.
    func fetchForReading(_ location: String) throws -> String? {
        let directory = stagingRoot + "/read"
        try Posix.makeDirectories(directory, mode: 0o700)
        let path = directory + "/" + Hex.encode(try SecureRandom.bytes(count: 6)) + "-" + Posix.baseName(location)
        return try store.get(location: location, to: path) ? path : nil
    }

    /// Removes a copy `fetchForReading` made (nothing in a local vault, whose paths are the bundles themselves).
    func discardFetched(_ path: String) {
        guard !store.isLocal, path.hasPrefix(stagingRoot + "/read/") else { return }
        _ = try? Posix.unlinkIfPresent(path)
    }

    /// Reads a DEK sidecar's bytes (at most 1 MiB) from wherever the store keeps it; nil when absent.
    func readSidecarBytes(bundleLocation: String) throws -> [UInt8]? {
        let location = DEKSidecar.location(forBundle: bundleLocation)
        if store.isLocal { return try? readAll(absolute(location)) }
        guard let path = try fetchForReading(location) else { return nil }
        defer { discardFetched(path) }
        return try readAll(path)
    }

    /// A remote store's leftovers after an interrupted job: the staging tree (copies of objects, or bundles sealed but
    /// never committed, whose 'writing' rows `archive` removes with their objects), incomplete multipart uploads
    /// (aborted: no job uploads while this job holds the vault lock), and objects of rows that are not live.
    func convergeStore() throws -> [String] {
        guard !store.isLocal else { return [] }
        var done: [String] = []
        // Files only: the empty day directories archive leaves in staging/bundles are not leftovers.
        let files = try stagedFiles(stagingRoot + "/read") + stagedFiles(stagingRoot + "/bundles")
        done += try Self.removeSyncingParents(files)
        let writing = try catalog.read { db in try String.fetchAll(db, sql: "SELECT location FROM bundles WHERE state = 'writing'") }
        try store.remove(writing.flatMap { [$0, DEKSidecar.location(forBundle: $0)] })
        let aborted = try store.abortIncompleteUploads()
        if aborted > 0 { done.append("\(aborted) incomplete multipart upload(s) in \(store.url ?? "")") }
        return done
    }

    /// What an interrupted `archive --source s3://…` left in `staging/source/` (downloaded copies of source objects, in
    /// any vault, local store or not): removed whole. The objects themselves are the source and untouched.
    func convergeSourceStaging() throws -> [String] {
        let directory = stagingRoot + "/source"
        guard try Posix.status(directory) != nil else { return [] }
        let runs = try Posix.listDirectory(directory)
        guard !runs.isEmpty else { return [] }
        for name in runs { try Posix.removeTree(directory + "/" + name) }
        try Posix.syncDirectory(directory)
        return runs.map { directory + "/" + $0 }
    }

    /// Every regular file under `directory` (absolute paths); none when it does not exist.
    private func stagedFiles(_ directory: String) throws -> [String] {
        guard let st = try Posix.status(directory) else { return [] }
        guard st.kind == .directory else { return [directory] }
        var out: [String] = []
        for name in try Posix.listDirectory(directory) { out += try stagedFiles(directory + "/" + name) }
        return out
    }

    /// Objects in the store that no live or in-progress catalog row names, and incomplete multipart uploads.
    func storeOrphans(known: Set<String>) throws -> (objects: [String], uploads: [String]) {
        guard !store.isLocal else { return ([], []) }
        let objects = try store.list().keys.filter { !known.contains($0) }.sorted()
        return (objects, try store.incompleteUploads().sorted())
    }
}
