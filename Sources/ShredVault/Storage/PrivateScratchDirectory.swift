#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultCrypto

/// A private local directory (0700) under `$TMPDIR` (else `/tmp`) named `shredvault-<purpose>-<16 hex>`, for what a
/// job must hold on local disk before it has a vault to hold it in (`recover --from s3://…`: the manifest, config,
/// archive key, trust record, catalog and sealed keystore snapshot).
///
/// The directory is locked (`flock`, exclusive, on the directory itself) for as long as this object lives, and
/// ``remove()`` deletes it. A killed job cannot remove its directory, but the kernel drops its lock: the next
/// directory of the same purpose is made only after every unlocked one of that purpose (owned by this user, a real
/// directory, not a symbolic link) is removed. A lock, not a process ID, tells a live job's directory from an
/// abandoned one, so a job in another PID namespace that shares the directory is never taken for dead.
final class PrivateScratchDirectory {
    let path: String
    private let handle: FileDescriptor
    private var removed = false

    /// - Parameter base: the parent directory; `$TMPDIR`, else `/tmp`, when nil.
    init(purpose: String, base: String? = nil) throws {
        let environment = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 }
        var parent = base ?? environment ?? "/tmp"
        while parent.count > 1, parent.hasSuffix("/") { parent.removeLast() }
        let prefix = "shredvault-\(purpose)-"
        Self.removeAbandoned(in: parent, prefix: prefix)
        while true {
            let candidate = parent + "/" + prefix + Hex.encode(try SecureRandom.bytes(count: 8))
            guard mkdir(candidate, 0o700) == 0 else {
                if errno == EEXIST { continue }
                throw VaultError.io(operation: "mkdir", path: candidate, errno: errno)
            }
            let handle = try FileDescriptor(open: candidate, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            while flock(handle.fd, LOCK_EX) != 0 {
                guard errno == EINTR else { throw VaultError.io(operation: "flock", path: candidate, errno: errno) }
            }
            // Between mkdir and flock the new directory is unlocked: another job's sweep may have taken it for
            // abandoned and removed it. Keep it only if the name still leads to the directory now locked.
            let held = try handle.status()
            var named = stat()
            if lstat(candidate, &named) == 0, named.st_dev == held.st_dev, named.st_ino == held.st_ino {
                path = candidate
                self.handle = handle
                return
            }
        }
    }

    deinit { remove() }

    /// Deletes the directory and what it holds, then drops the lock; best effort (a directory left behind is removed by
    /// the next job of the same purpose).
    func remove() {
        guard !removed else { return }
        removed = true
        try? Posix.removeTree(path)
        _ = flock(handle.fd, LOCK_UN)
    }

    /// Removes every directory named `prefix` + 16 hex digits in `parent` that this user owns and no process holds
    /// locked: what killed jobs left. Anything else (another user's directory, a symbolic link, a file, a directory in
    /// use) is left alone; errors are ignored.
    static func removeAbandoned(in parent: String, prefix: String) {
        guard let names = try? Posix.listDirectory(parent) else { return }
        let hex = Set("0123456789abcdef")
        for name in names where name.hasPrefix(prefix) {
            let suffix = name.dropFirst(prefix.count)
            guard suffix.count == 16, suffix.allSatisfy({ hex.contains($0) }) else { continue }
            let candidate = parent + "/" + name
            // O_NOFOLLOW | O_DIRECTORY: a symbolic link or a file of that name fails to open and is skipped.
            guard let handle = try? FileDescriptor(open: candidate, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW),
                  let st = try? handle.status(), st.st_uid == geteuid(),
                  flock(handle.fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            try? Posix.removeTree(candidate)
            _ = flock(handle.fd, LOCK_UN)
        }
    }
}
