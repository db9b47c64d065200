#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto

/// The destruction root (vault-format.md §3.7): the only secret whose erasure the vault relies on. It holds one
/// AES-256 key per **generation**; the keystore's and keyring's bucket tables are sealed under the current one,
/// and every destruction moves them to a new generation and destroys the old one, so every older copy of either
/// file (snapshots, journals, free blocks, an operator's `cp`) stops opening anything.
public protocol DestructionRoot: AnyObject {
    /// The generations whose keys exist, ascending.
    func generations() throws -> [UInt64]
    /// Creates the key of `generation` (durably); nothing if it exists.
    func create(generation: UInt64) throws
    /// AES-256-GCM under the generation's key: `nonce(12) ‖ ciphertext ‖ tag(16)`.
    func seal(_ plaintext: SecretBytes, generation: UInt64, aad: [UInt8]) throws -> [UInt8]
    func open(_ sealed: [UInt8], generation: UInt64, aad: [UInt8]) throws -> SecretBytes
    /// Destroys the generation's key (durably); nothing if it is absent.
    func destroy(generation: UInt64) throws
    /// Operations performed on the root so far (create, seal, open, destroy), for the benchmark.
    var operations: Int { get }
    /// Where the root is, for messages (never a secret).
    var location: String { get }
}

/// Software mode: one small root file (mode 0600, outside the vault) of two fixed 4096-byte slots, each holding
/// at most one generation: `"SVROOT1\n" ‖ be64(generation) ‖ key(32) ‖ SHA-256(the preceding 48 bytes)`, the
/// rest zero. A new generation is written into the free slot and fsynced; a destroyed one is overwritten in place
/// with zeros and fsynced, so the file's blocks are reused, not reallocated (on a file system that overwrites in
/// place; copy-on-write file systems, snapshots and SSD remapping may keep old blocks: that is what the PKCS#11
/// mode is for). A torn write can only damage the slot being written.
public final class RootFile: DestructionRoot {
    public static let slotSize = 4096
    static let magic = Array("SVROOT1\n".utf8)
    public let path: String
    public private(set) var operations = 0
    public var location: String { path }

    /// Opens an existing root file (regular, no group or other permissions).
    public init(path: String) throws {
        self.path = path
        guard let st = try Posix.status(path) else { throw VaultError.notFound(path: path, what: "destruction root file") }
        guard st.kind == .regular, st.size == Int64(2 * Self.slotSize) else {
            throw VaultError.keyFile(path: path, reason: "not a destruction root file (expected a regular file of \(2 * Self.slotSize) bytes)")
        }
        guard st.mode & 0o077 == 0 else {
            throw VaultError.keyFile(path: path, reason: "the destruction root must not be readable by group or others (chmod 600)")
        }
    }

    /// Creates a new, empty root file (no generation yet); refuses an existing path.
    public static func create(path: String) throws -> RootFile {
        let file = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        try file.write([UInt8](repeating: 0, count: 2 * slotSize))
        try file.sync()
        try file.close()
        try Posix.syncDirectory(Posix.directoryName(path))
        return try RootFile(path: path)
    }

    private struct Slot { var index: Int; var generation: UInt64; var key: SecretBytes }

    private func slots() throws -> [Slot?] {
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        let bytes = SecretBytes(count: 2 * Self.slotSize)
        try bytes.withUnsafeMutableBytes { buffer in
            var filled = 0
            while filled < buffer.count {
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                guard n > 0 else { throw VaultError.keyFile(path: path, reason: "destruction root file is truncated") }
                filled += n
            }
        }
        return try (0..<2).map { i in
            try bytes.withUnsafeBytes { all -> Slot? in
                let slot = UnsafeRawBufferPointer(rebasing: all[(i * Self.slotSize)..<(i * Self.slotSize + 80)])
                if slot.allSatisfy({ $0 == 0 }) { return nil }
                guard Array(slot[0..<8]) == Self.magic,
                      constantTimeEquals(try SHA256.hash(Array(slot[0..<48])), Array(slot[48..<80])) else {
                    // A damaged slot (a torn write) holds no usable generation.
                    return nil
                }
                let generation = slot[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return Slot(index: i, generation: generation, key: SecretBytes(copying: slot[16..<48]))
            }
        }
    }

    public func generations() throws -> [UInt64] { try slots().compactMap { $0?.generation }.sorted() }

    private func key(_ generation: UInt64) throws -> SecretBytes {
        guard let slot = try slots().compactMap({ $0 }).first(where: { $0.generation == generation }) else {
            throw VaultError.unrecoverable(user: "(keystore)", date: "an earlier date",
                                           reason: "destruction root generation \(generation) no longer exists in \(path)")
        }
        return slot.key
    }

    private func writeSlot(_ index: Int, _ bytes: SecretBytes) throws {
        let file = try FileDescriptor(open: path, flags: O_WRONLY)
        try bytes.withUnsafeBytes { buffer in
            let n = pwrite(file.fd, buffer.baseAddress, buffer.count, off_t(index * Self.slotSize))
            guard n == buffer.count else { throw VaultError.io(operation: "pwrite", path: path, errno: n < 0 ? errno : EIO) }
        }
        try file.sync()
        try file.close()
    }

    public func create(generation: UInt64) throws {
        operations += 1
        let current = try slots()
        if current.contains(where: { $0?.generation == generation }) { return }
        guard let free = current.firstIndex(where: { $0 == nil }) else {
            throw VaultError.keyFile(path: path, reason: "both slots hold a generation; a job must converge the root first")
        }
        let slot = SecretBytes(count: Self.slotSize)
        let key = try SecretBytes.random(count: 32)
        try slot.withUnsafeMutableBytes { s in
            var head = Self.magic
            head.appendBigEndian(generation)
            s.copyBytes(from: head)
            key.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: s[16..<48]).copyMemory(from: $0) }
            let digest = try SHA256.hash(Array(UnsafeRawBufferPointer(rebasing: s[0..<48])))
            UnsafeMutableRawBufferPointer(rebasing: s[48..<80]).copyBytes(from: digest)
        }
        try writeSlot(free, slot)
    }

    public func destroy(generation: UInt64) throws {
        operations += 1
        for slot in try slots().compactMap({ $0 }) where slot.generation == generation {
            try writeSlot(slot.index, SecretBytes(count: Self.slotSize))
        }
    }

    public func seal(_ plaintext: SecretBytes, generation: UInt64, aad: [UInt8]) throws -> [UInt8] {
        operations += 1
        return try RootCipher.seal(plaintext, key: try key(generation), aad: aad)
    }

    public func open(_ sealed: [UInt8], generation: UInt64, aad: [UInt8]) throws -> SecretBytes {
        operations += 1
        return try RootCipher.open(sealed, key: try key(generation), aad: aad, what: path)
    }
}

/// `nonce(12) ‖ AES-256-GCM(key, nonce, aad, plaintext) ‖ tag(16)`, the layout of every ratchet wrap.
enum RootCipher {
    static func seal(_ plaintext: SecretBytes, key: SecretBytes, aad: [UInt8]) throws -> [UInt8] {
        let nonce = try SecureRandom.bytes(count: AESGCM256.nonceSize)
        var out = [UInt8](repeating: 0, count: AESGCM256.nonceSize + plaintext.count + AESGCM256.tagSize)
        out.replaceSubrange(0..<AESGCM256.nonceSize, with: nonce)
        let cipher = try AESGCM256(key: key)
        try plaintext.withUnsafeBytes { p in
            try aad.withUnsafeBytes { a in
                try out.withUnsafeMutableBytes { o in
                    try cipher.seal(nonce: nonce, plaintext: p, aad: a, into: UnsafeMutableRawBufferPointer(rebasing: o[AESGCM256.nonceSize...]))
                }
            }
        }
        return out
    }

    static func open(_ sealed: [UInt8], key: SecretBytes, aad: [UInt8], what: String) throws -> SecretBytes {
        guard sealed.count >= AESGCM256.nonceSize + AESGCM256.tagSize else {
            throw VaultError.corruptBundle(path: what, reason: "ratchet wrap is too short")
        }
        let out = SecretBytes(count: sealed.count - AESGCM256.nonceSize - AESGCM256.tagSize)
        let cipher = try AESGCM256(key: key)
        do {
            try sealed.withUnsafeBytes { s in
                try aad.withUnsafeBytes { a in
                    try out.withUnsafeMutableBytes { o in
                        try cipher.open(nonce: Array(s[0..<AESGCM256.nonceSize]),
                                        ciphertextAndTag: UnsafeRawBufferPointer(rebasing: s[AESGCM256.nonceSize...]), aad: a, into: o)
                    }
                }
            }
        } catch {
            throw VaultError.corruptBundle(path: what, reason: "ratchet wrap does not authenticate (wrong root generation, or modified)")
        }
        return out
    }
}
