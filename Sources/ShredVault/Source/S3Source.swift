#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto
import VaultS3

/// An archive source in an S3 bucket, `s3://BUCKET[/PREFIX]` (vault-format.md §6.5): `PREFIX/accounts.csv` and the
/// objects `PREFIX/users/<id>/…`, read like a source directory. Endpoint, region and credentials come from the AWS_*
/// environment variables, as for an S3 bundle store. Thread-safe (the client is; nothing else changes after init).
final class S3ArchiveSource: Sendable {
    let address: BundleStoreURL
    let client: S3Client
    /// accounts.csv larger than this is refused (a local one is read up to the same bound).
    static let maxAccountsBytes = 64 << 20

    /// Tests only: called with the user id after a user's objects are listed and before they are downloaded.
    let afterListing: (@Sendable (String) throws -> Void)?

    init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment,
         afterListing: (@Sendable (String) throws -> Void)? = nil) throws {
        address = try BundleStoreURL(parsing: url, what: "source")
        self.afterListing = afterListing
        do { client = try S3Client(environment: environment) } catch { throw Self.storeError(error, doing: "configuring the S3 client") }
    }

    /// `s3://BUCKET[/PREFIX]`, as reports name the source.
    var description: String { address.description }

    /// The key of `PREFIX/users/<user>/` (every object of the user starts with it).
    func userPrefix(_ user: String) -> String { address.prefix + "users/" + user + "/" }

    /// An object's URL for messages.
    func url(ofKey key: String) -> String { "s3://" + address.bucket + "/" + Self.printable(key) }

    static func storeError(_ error: Error, doing what: String) -> VaultError {
        if let error = error as? VaultError { return error }
        if let error = error as? S3Error { return .sourceStore("\(what): \(error.description)") }
        return .sourceStore("\(what): \(error)")
    }

    /// The text of `PREFIX/accounts.csv`; `notFound` when the bucket has no such object (exit 66, as for a directory
    /// without one), `sourceStore` (exit 14) when the store cannot be reached, refuses the credentials or lacks the
    /// bucket. The first request of a run: nothing has changed when it fails.
    func readAccounts() throws -> String {
        let key = address.prefix + "accounts.csv"
        var bytes: [UInt8] = []
        do {
            try client.getObject(bucket: address.bucket, key: key) { chunk in
                guard bytes.count + chunk.count <= Self.maxAccountsBytes else {
                    throw VaultError.invalidArgument("\(self.url(ofKey: key)) is larger than \(Self.maxAccountsBytes >> 20) MiB")
                }
                bytes.append(contentsOf: chunk)
            }
        } catch S3Error.noSuchKey {
            throw VaultError.notFound(path: url(ofKey: key), what: "accounts file")
        } catch {
            throw Self.storeError(error, doing: "reading \(url(ofKey: key))")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What `PREFIX/users/` holds, from one delimited listing (with continuation; one entry per user, never per object):
    /// the user ids that have objects below `users/<id>/` (`prefixes`), and the names of objects `users/<id>` that are
    /// not below a prefix (a user "directory" that is a plain object: that user fails, as a file would in a directory
    /// source).
    func listUsers() throws -> (prefixes: Set<String>, objects: Set<String>) {
        let base = address.prefix + "users/"
        var prefixes = Set<String>(), objects = Set<String>()
        var token: String?
        do {
            repeat {
                let page = try client.listObjectsV2(bucket: address.bucket, prefix: base, delimiter: "/", continuationToken: token)
                for p in page.commonPrefixes where p.hasPrefix(base) && p.hasSuffix("/") {
                    prefixes.insert(String(p.dropFirst(base.count).dropLast()))
                }
                for o in page.objects where o.key.hasPrefix(base) { objects.insert(String(o.key.dropFirst(base.count))) }
                token = page.nextContinuationToken
            } while token != nil
        } catch {
            throw Self.storeError(error, doing: "listing \(url(ofKey: base))")
        }
        return (prefixes, objects)
    }

    /// Every object below `users/<user>/` (ListObjectsV2 with continuation).
    func objects(ofUser user: String) throws -> [S3ObjectSummary] {
        try client.listObjects(bucket: address.bucket, prefix: userPrefix(user))
    }

    /// Deletes `keys` (DeleteObjects, batches of at most 1000 with Content-MD5; absent keys count as deleted). Returns the
    /// keys the store refused, with its reasons.
    func delete(_ keys: [String]) throws -> [S3DeleteFailure] {
        guard !keys.isEmpty else { return [] }
        return try client.deleteObjects(bucket: address.bucket, keys: keys)
    }

    /// Why an object key (the part below `users/<id>/`, without a directory marker's trailing `/`) cannot be a path of
    /// the user's tree, or nil: the bundle's entry-path rules (§2.4: no empty, `.` or `..` component, not absolute, no
    /// NUL, length limits) and no control character (C0, DEL, C1).
    static func keyProblem(_ relative: String) -> String? {
        if let problem = EntryPath.problem(relative) { return problem }
        if relative.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) { return "control character in name" }
        return nil
    }

    /// The plan of one user's download: the listed objects as files and directories of the tree, checked.
    struct UserTree {
        struct File {
            var key: String
            var relative: String
            var size: UInt64
            var etag: String
            var mtime: Int64
        }
        var files: [File] = []
        /// Relative directory paths with the mtime they get: the latest Last-Modified of any object below them (or of
        /// their marker object).
        var directories: [String: Int64] = [:]
        /// Every key listed (files and directory markers): what is deleted once the user's bundle is committed.
        var keys: [String] = []
    }

    /// Checks the listing of `user` and turns it into a tree. A key that cannot be a relative path, a key that is both
    /// an object and a prefix of others, a marker with contents or an object without a usable Last-Modified fails the
    /// user (`UserFailure`, naming the object).
    func plan(user: String, objects: [S3ObjectSummary]) throws -> UserTree {
        let prefix = userPrefix(user)
        var tree = UserTree()
        var fileNames = Set<String>()
        func noteDirectories(of relative: String, mtime: Int64, including: Bool) {
            var path = including ? relative : EntryPath.parent(relative)
            while let p = path {
                tree.directories[p] = max(tree.directories[p] ?? mtime, mtime)
                path = EntryPath.parent(p)
            }
        }
        for object in objects {
            guard object.key.hasPrefix(prefix) else { continue }
            tree.keys.append(object.key)
            var relative = String(object.key.dropFirst(prefix.count))
            let isMarker = relative.hasSuffix("/")
            if isMarker { relative.removeLast() }
            guard let mtime = object.lastModified.flatMap(Timestamp.parse) else {
                throw UserFailure(reason: "the store listed \(url(ofKey: object.key)) without a usable LastModified; nothing of this user was archived",
                                  path: url(ofKey: object.key))
            }
            if relative.isEmpty && isMarker { continue }  // `users/<id>/` itself: the user's directory
            if let problem = Self.keyProblem(relative) {
                throw UserFailure(reason: "object key '\(Self.printable(object.key))' cannot be archived (\(problem)); nothing of this user was archived, its objects are kept",
                                  path: url(ofKey: object.key))
            }
            if isMarker {
                guard object.size == 0 else {
                    throw UserFailure(reason: "directory marker \(url(ofKey: object.key)) has contents (\(object.size) bytes); nothing of this user was archived",
                                      path: url(ofKey: object.key))
                }
                noteDirectories(of: relative, mtime: mtime, including: true)
            } else {
                fileNames.insert(relative)
                tree.files.append(.init(key: object.key, relative: relative, size: object.size, etag: object.etag, mtime: mtime))
                noteDirectories(of: relative, mtime: mtime, including: false)
            }
        }
        if let clash = tree.files.first(where: { tree.directories[$0.relative] != nil }) {
            throw UserFailure(reason: "\(url(ofKey: clash.key)) is both an object and a prefix of other objects; nothing of this user was archived",
                              path: url(ofKey: clash.key))
        }
        return tree
    }

    /// Downloads the objects of `user` into the new private directory `directory` (0700; files 0600, created with
    /// O_EXCL|O_NOFOLLOW, streamed, never held in memory), each file's mtime the object's Last-Modified, each
    /// directory's the latest below it. Returns the keys listed (what is deleted after the commit).
    ///
    /// A key that is not a safe path, an object that changed between the listing and its download (size or ETag
    /// differs), or a request that fails fails this user only (`UserFailure`); local I/O errors (a full disk) stay what
    /// they are and end the job.
    func download(user: String, to directory: String) throws -> [String] {
        let listed: [S3ObjectSummary]
        do { listed = try objects(ofUser: user) } catch {
            throw UserFailure(reason: "its objects could not be listed: \(Self.storeError(error, doing: "listing \(url(ofKey: userPrefix(user)))"))",
                              path: url(ofKey: userPrefix(user)))
        }
        guard !listed.isEmpty else {
            // Listed under users/ a moment ago: gone since (an archive needs at least one key to delete after it).
            throw UserFailure(reason: "\(url(ofKey: userPrefix(user))) disappeared while archiving; run again", path: url(ofKey: userPrefix(user)))
        }
        let tree = try plan(user: user, objects: listed)
        try afterListing?(user)
        try Posix.makeDirectory(directory, mode: 0o700)
        for relative in tree.directories.keys.sorted(by: { $0.utf8.count < $1.utf8.count }) {
            try Posix.makeDirectory(directory + "/" + relative, mode: 0o700)
        }
        for file in tree.files {
            let path = directory + "/" + file.relative
            let output = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
            var written: UInt64 = 0
            let info: S3ObjectInfo
            do {
                info = try client.getObject(bucket: address.bucket, key: file.key) { chunk in
                    written += UInt64(chunk.count)
                    try output.write(chunk)
                }
            } catch let error as VaultError {
                try? output.close()
                throw error
            } catch S3Error.noSuchKey {
                try? output.close()
                throw UserFailure(reason: "\(url(ofKey: file.key)) disappeared while archiving; run again", path: url(ofKey: file.key))
            } catch {
                try? output.close()
                throw UserFailure(reason: "\(url(ofKey: file.key)) could not be downloaded: \(Self.storeError(error, doing: "GetObject"))",
                                  path: url(ofKey: file.key))
            }
            guard info.size == file.size, written == file.size, info.etag == file.etag else {
                try? output.close()
                throw UserFailure(reason: "\(url(ofKey: file.key)) changed while being archived (listed \(file.size) bytes, ETag \(file.etag); "
                                  + "read \(written) bytes, ETag \(info.etag)); run again", path: url(ofKey: file.key))
            }
            try output.setModificationTime(file.mtime)
            try output.close()
        }
        // Deepest first: setting a directory's time does not touch its parent's.
        for (relative, mtime) in tree.directories.sorted(by: { $0.key.utf8.count > $1.key.utf8.count }) {
            try Posix.setModificationTime(directory + "/" + relative, mtime)
        }
        return tree.keys
    }

    /// A key as messages show it: control characters escaped (`\u{1}`), so a hostile key cannot forge log lines.
    static func printable(_ key: String) -> String {
        var out = ""
        for scalar in key.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
