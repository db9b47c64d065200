#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto
import VaultS3

/// Where a vault's bundles and DEK sidecars are kept (vault-format.md §6.5): the vault directory itself (the default)
/// or an S3 bucket. Locations are the catalog's, `bundles/YYYY/MM/DD/<id>.svb|.dek`.
///
/// A local store's files are the stored bundles. A remote store's jobs work on private staging copies under
/// `DIR/staging/` (`Vault.absolute`), written and verified there before `put`, fetched there with `get` before reading.
public protocol BundleStore: AnyObject, Sendable {
    /// The store as the config records it: nil for the vault directory, `s3://BUCKET[/PREFIX]` otherwise.
    var url: String? { get }
    /// Stores the local file `path` as `location` and checks that what the store now returns is that file: its size,
    /// and the SHA-256 of a full streamed read-back against `sha256` (G4 against the store, §6.5).
    func put(location: String, from path: String, sha256: [UInt8]) throws
    /// Copies `location` to the local file `path` (replacing it); false when the store has no such object.
    func get(location: String, to path: String) throws -> Bool
    /// Removes the objects (absent ones count as removed).
    func remove(_ locations: [String]) throws
    /// Every stored location under `bundles/` with its size.
    func list() throws -> [String: UInt64]
    /// Keys of multipart uploads an interrupted job left (no job uploads while another holds the vault lock).
    func incompleteUploads() throws -> [String]
    /// Aborts every incomplete multipart upload; returns how many.
    func abortIncompleteUploads() throws -> Int
    /// Checks that the store answers, takes the credentials and has the bucket (one cheap request), so a job can
    /// stop with one line before it changes anything (§6.5 "Faults"). Nothing for the vault directory.
    func probe() throws
    /// The object's size (HeadObject) and its first `prefixLength` bytes (one ranged GetObject), or nil when the
    /// store has no such object: what `check --quick` reads of a bundle instead of the whole object.
    func head(location: String, prefixLength: Int) throws -> (size: UInt64, prefix: [UInt8])?
}

extension BundleStore {
    public var isLocal: Bool { url == nil }
}

/// An `s3://BUCKET[/PREFIX]` URL. A bucket is 3–63 characters of `a-z 0-9 . -`; the prefix has no empty, `.` or `..`
/// segment and no control character; a trailing `/` is dropped.
public struct BundleStoreURL: Sendable, Equatable, CustomStringConvertible {
    public let bucket: String
    /// Empty, or ends with `/`.
    public let prefix: String

    /// - Parameter what: names the URL in errors ("bundle store", "source").
    public init(parsing text: String, what: String = "bundle store") throws {
        guard text.hasPrefix("s3://") else {
            throw VaultError.invalidArgument("\(what) '\(text)' is not an s3://BUCKET[/PREFIX] URL")
        }
        let rest = text.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = String(parts[0])
        var prefix = parts.count > 1 ? String(parts[1]) : ""
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard (3...63).contains(bucket.utf8.count), bucket.utf8.allSatisfy(Self.isBucketByte) else {
            throw VaultError.invalidArgument("\(what) '\(text)': bucket name must be 3-63 characters of a-z, 0-9, '.' and '-'")
        }
        guard prefix.isEmpty || Self.isValidPrefix(prefix) else {
            throw VaultError.invalidArgument("\(what) '\(text)': the prefix must not contain empty, '.' or '..' segments or control characters")
        }
        self.bucket = bucket
        self.prefix = prefix.isEmpty ? "" : prefix + "/"
    }

    private static func isBucketByte(_ byte: UInt8) -> Bool {
        let lower: ClosedRange<UInt8> = 0x61...0x7A
        let digit: ClosedRange<UInt8> = 0x30...0x39
        return lower.contains(byte) || digit.contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }

    private static func isValidPrefix(_ prefix: String) -> Bool {
        for segment in prefix.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty || segment == "." || segment == ".." { return false }
        }
        for scalar in prefix.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator: return false
            default: continue
            }
        }
        return true
    }

    public var description: String { "s3://" + bucket + (prefix.isEmpty ? "" : "/" + String(prefix.dropLast())) }
}

extension VaultError {
    /// An object-store failure as one line (S3Error's text never holds a secret).
    static func objectStore(_ error: Error) -> VaultError {
        if let error = error as? VaultError { return error }
        if let error = error as? S3Error { return .objectStore(error.description) }
        return .objectStore("\(error)")
    }
}

/// Runs `body`, turning VaultS3's errors into `VaultError.objectStore`.
func storeCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch { throw VaultError.objectStore(error) }
}

/// A file that several threads write at distinct offsets (the ranges of one object being fetched).
private final class PositionalOutput: @unchecked Sendable {
    private let file: FileDescriptor

    init(_ file: FileDescriptor) { self.file = file }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws { try file.write(bytes, at: offset) }
}

/// The vault directory as the store (today's layout, unchanged): bundles are files at `root/location`.
public final class LocalBundleStore: BundleStore {
    public let root: String
    public var url: String? { nil }

    public init(root: String) { self.root = root }

    public func put(location: String, from path: String, sha256: [UInt8]) throws {
        let target = root + "/" + location
        if path != target { try Vault.copyFileStatic(path, to: target) }
    }

    public func get(location: String, to path: String) throws -> Bool {
        let source = root + "/" + location
        guard Posix.exists(source) else { return false }
        if path != source {
            _ = try Posix.unlinkIfPresent(path)
            try Vault.copyFileStatic(source, to: path)
        }
        return true
    }

    public func remove(_ locations: [String]) throws {
        var directories = Set<String>()
        for location in locations where try Posix.unlinkIfPresent(root + "/" + location) {
            directories.insert(Posix.directoryName(root + "/" + location))
        }
        for d in directories.sorted() { try Posix.syncDirectory(d) }
    }

    public func list() throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        func walk(_ relative: String) throws {
            for name in try Posix.listDirectory(root + "/" + relative) where !name.hasPrefix(".") {
                let path = relative + "/" + name
                guard let st = try Posix.status(root + "/" + path) else { continue }
                if st.kind == .directory {
                    try walk(path)
                } else if name.hasSuffix(".svb") || name.hasSuffix(".dek") {
                    out[path] = UInt64(st.size)
                }
            }
        }
        if Posix.exists(root + "/bundles") { try walk("bundles") }
        return out
    }

    public func incompleteUploads() throws -> [String] { [] }
    public func abortIncompleteUploads() throws -> Int { 0 }
    public func probe() throws {}

    public func head(location: String, prefixLength: Int) throws -> (size: UInt64, prefix: [UInt8])? {
        let path = root + "/" + location
        guard let st = try Posix.status(path) else { return nil }
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        return (UInt64(st.size), try file.read(upTo: prefixLength))
    }
}

/// Bundles and sidecars as objects `PREFIX/YYYY/MM/DD/<id>.svb|.dek` in an S3 bucket. The client is made on first
/// use from the AWS_* environment variables (never from the config), so commands that do not touch bundles work
/// without them.
public final class S3BundleStore: BundleStore, @unchecked Sendable {
    public let address: BundleStoreURL
    public var url: String? { address.description }
    /// Objects up to this size go up in one PutObject; larger ones in parts of this size, `partsInFlight` at once.
    /// Reads of larger objects (read-back and fetch) are ranged GETs of this size, as many at once.
    static let partSize = 8 * 1024 * 1024
    /// Parts (or ranges) of one object in flight: the store answers several streams faster than one, and memory stays
    /// bounded by (partsInFlight + 1) × partSize per object being uploaded (partsInFlight × partSize being read back).
    static let partsInFlight = 3
    /// The read-back hashes ranges in order, holding up to `partsInFlight` of them: smaller ranges than the upload's
    /// parts keep that at 12 MiB (a fetch to a file holds none: each range is written at its offset as it arrives).
    static let readBackRangeSize = 4 * 1024 * 1024
    private let environment: [String: String]
    private let lock = NSLock()
    private var cachedClient: S3Client?

    public init(_ address: BundleStoreURL, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.address = address
        self.environment = environment
    }

    func client() throws -> S3Client {
        lock.lock()
        defer { lock.unlock() }
        if let cachedClient { return cachedClient }
        let made = try storeCall { try S3Client(environment: environment) }
        cachedClient = made
        return made
    }

    /// `bundles/2026/12/01/x.svb` → `PREFIX/2026/12/01/x.svb`.
    func key(_ location: String) -> String {
        precondition(location.hasPrefix("bundles/"), "bundle locations start with bundles/")
        return address.prefix + location.dropFirst("bundles/".count)
    }

    func location(forKey key: String) -> String? {
        guard key.hasPrefix(address.prefix) else { return nil }
        return "bundles/" + key.dropFirst(address.prefix.count)
    }

    /// Checks the bucket exists and the credentials may list it, before `init` creates anything: one
    /// ListObjectsV2 (which names wrong credentials precisely, as HeadBucket cannot).
    public func probe() throws {
        let client = try client()
        _ = try storeCall { try client.listObjectsV2(bucket: address.bucket, prefix: address.prefix, maxKeys: 1) }
    }

    public func put(location: String, from path: String, sha256: [UInt8]) throws {
        let client = try client()
        let size = try Self.upload(client: client, bucket: address.bucket, key: key(location), from: path)
        try Self.verify(client: client, bucket: address.bucket, key: key(location),
                        what: address.description + "/" + location.dropFirst("bundles/".count), size: size, sha256: sha256)
    }

    /// Uploads the local file `path` as `key`: one PutObject with `Content-MD5` up to `partSize`, above that in parts
    /// of `partSize` (each with its `Content-MD5`), 2 in flight; memory is bounded by the parts in flight. Returns the
    /// size uploaded. An interrupted multipart upload is aborted.
    static func upload(client: S3Client, bucket: String, key: String, from path: String) throws -> UInt64 {
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        let size = UInt64(try file.status().st_size)
        if size <= UInt64(Self.partSize) {
            let body = try file.read(upTo: Int(size) + 1)
            guard UInt64(body.count) == size else {
                throw VaultError.bundleMismatch(path: path, reason: "it changed size while being uploaded")
            }
            try storeCall { _ = try client.putObject(bucket: bucket, key: key, body: body) }
        } else {
            let uploader = try storeCall {
                try S3MultipartUploader(client: client, bucket: bucket, key: key, partSize: Self.partSize, maxPartsInFlight: Self.partsInFlight)
            }
            do {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                while true {
                    let n = try file.read(into: buffer)
                    if n == 0 { break }
                    try storeCall { try uploader.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
                }
                _ = try storeCall { try uploader.finish() }
            } catch {
                uploader.abort()
                throw error
            }
        }
        return size
    }

    /// G4 against the store: a full read of the object (ranged GETs pinned to one ETag, hashed in order) must give
    /// the size written and hash to the SHA-256 written. (A HeadObject first would add a request and prove nothing
    /// more: the GET's answers carry the object's size.) A store that returns other bytes than it was given is a store
    /// failure (exit 14), never accepted: nothing is committed, and the next job deletes the object of the uncommitted
    /// row and uploads again.
    static func verify(client: S3Client, bucket: String, key: String, what: String, size: UInt64, sha256: [UInt8]) throws {
        let hash = try SHA256()
        var received: UInt64 = 0
        let info = try storeCall {
            try client.getObjectInOrder(bucket: bucket, key: key, partSize: Self.readBackRangeSize, maxInFlight: Self.partsInFlight) {
                received += UInt64($0.count)
                try hash.update($0)
            }
        }
        let digest = try hash.finalize()
        guard info.size == size, received == size else {
            throw VaultError.objectStore("\(what): the read-back returned \(received) bytes, not the \(size) written; nothing was committed")
        }
        guard digest == sha256 else {
            throw VaultError.objectStore("\(what): the object read back from the store differs from what was written (SHA-256); nothing was committed")
        }
    }

    public func head(location: String, prefixLength: Int) throws -> (size: UInt64, prefix: [UInt8])? {
        let client = try client()
        let key = key(location)
        let info: S3ObjectInfo
        do { info = try client.headObject(bucket: address.bucket, key: key) } catch S3Error.noSuchKey {
            return nil
        } catch { throw VaultError.objectStore(error) }
        let length = UInt64(max(0, prefixLength))
        guard info.size > 0, length > 0 else { return (info.size, []) }
        var prefix: [UInt8] = []
        do {
            // Pinned to the object HEAD saw: a replaced object makes the GET fail instead of mixing two.
            try client.getObject(bucket: address.bucket, key: key, range: S3ByteRange(first: 0, last: min(length, info.size) - 1),
                                 ifMatch: info.etag) { prefix.append(contentsOf: $0) }
        } catch S3Error.noSuchKey {
            return nil
        } catch { throw VaultError.objectStore(error) }
        return (info.size, prefix)
    }

    public func get(location: String, to path: String) throws -> Bool {
        let client = try client()
        try Posix.makeDirectories(Posix.directoryName(path), mode: 0o700)
        _ = try Posix.unlinkIfPresent(path)
        let output = PositionalOutput(try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600))
        do {
            // Ranges of a large object arrive concurrently, each written at its offset; the caller checks the whole
            // copy (size, header, signatures, SHA-256 against the catalog) before any key is used (§6.5).
            _ = try client.getObjectConcurrently(bucket: address.bucket, key: key(location), partSize: Self.partSize,
                                                 maxInFlight: Self.partsInFlight) { offset, bytes in
                try output.write(bytes, at: offset)
            }
            return true
        } catch S3Error.noSuchKey {
            _ = try? Posix.unlinkIfPresent(path)
            return false
        } catch {
            _ = try? Posix.unlinkIfPresent(path)
            throw VaultError.objectStore(error)
        }
    }

    public func remove(_ locations: [String]) throws {
        guard !locations.isEmpty else { return }
        let client = try client()
        let keys = locations.map { key($0) }
        let failures = try storeCall { try client.deleteObjects(bucket: address.bucket, keys: keys) }
        if let first = failures.first {
            throw VaultError.objectStore("the store could not delete \(failures.count) object(s), e.g. \(first.key): \(first.code) \(first.message)")
        }
    }

    public func list() throws -> [String: UInt64] {
        let client = try client()
        var out: [String: UInt64] = [:]
        let objects = try storeCall { try client.listObjects(bucket: address.bucket, prefix: address.prefix) }
        for object in objects {
            guard let location = location(forKey: object.key) else { continue }
            if location.hasSuffix(".svb") || location.hasSuffix(".dek") { out[location] = object.size }
        }
        return out
    }

    public func incompleteUploads() throws -> [String] {
        let client = try client()
        let uploads = try storeCall { try client.listMultipartUploads(bucket: address.bucket, prefix: address.prefix) }
        return uploads.map(\.key)
    }

    public func abortIncompleteUploads() throws -> Int {
        let client = try client()
        let uploads = try storeCall { try client.listMultipartUploads(bucket: address.bucket, prefix: address.prefix) }
        for upload in uploads {
            try storeCall { try client.abortMultipartUpload(bucket: address.bucket, key: upload.key, uploadID: upload.uploadID) }
        }
        return uploads.count
    }
}
