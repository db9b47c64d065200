import Foundation
import XCTest
@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// The private local directory `recover --from s3://…` downloads into: locked while its job lives, removed by it, and
/// removed by the next job of its purpose when a killed job left it behind. Nothing else in the parent is touched.
final class PrivateScratchDirectoryTests: XCTestCase {
    private var base = ""

    override func setUpWithError() throws {
        base = try makeTemporaryDirectory(self)
    }


    /// A second open file description of `path` (as another process would hold); nil when it cannot be opened.
    private func lockable(_ path: String) -> Bool? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        XCTAssertEqual(errno, EWOULDBLOCK)
        return false
    }

    func testTheDirectoryIsPrivateLockedWhileItLivesAndGoneAfterRemove() throws {
        let scratch = try PrivateScratchDirectory(purpose: "recover", base: base + "/")
        let name = Posix.baseName(scratch.path)
        XCTAssertEqual(Posix.directoryName(scratch.path), base, "a trailing slash of the parent is not doubled")
        XCTAssertTrue(name.hasPrefix("shredvault-recover-") && name.count == "shredvault-recover-".count + 16, name)
        let st = try XCTUnwrap(try Posix.status(scratch.path))
        XCTAssertEqual(st.kind, .directory)
        XCTAssertEqual(st.mode, 0o700)
        XCTAssertEqual(lockable(scratch.path), false, "locked for as long as the object lives")
        try writeFile(scratch.path + "/catalog.db", [1, 2, 3])
        // Another job of the same purpose meanwhile leaves it alone.
        let other = try PrivateScratchDirectory(purpose: "recover", base: base)
        XCTAssertNotEqual(other.path, scratch.path)
        XCTAssertNotNil(try Posix.status(scratch.path + "/catalog.db"))
        scratch.remove()
        XCTAssertNil(try Posix.status(scratch.path))
        scratch.remove()  // twice is harmless
        other.remove()
        XCTAssertEqual(try Posix.listDirectory(base), [])
    }

    func testWhatAKilledJobLeftIsRemovedAndNothingElse() throws {
        // What a killed job left: a directory of the purpose, unlocked, with files and a subdirectory.
        let abandoned = base + "/shredvault-recover-0123456789abcdef"
        try writeFile(abandoned + "/keystore-1.svks", [9, 9])
        try writeFile(abandoned + "/nested/catalog.db", [7])
        XCTAssertEqual(chmod(abandoned, 0o700), 0)
        // A live job's directory: locked by another open file description, as another process would hold it.
        let live = base + "/shredvault-recover-fedcba9876543210"
        try writeFile(live + "/config", [1])
        let liveFD = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(liveFD, 0)
        XCTAssertEqual(flock(liveFD, LOCK_EX | LOCK_NB), 0)
        // Names that only look alike, a symbolic link to a directory outside, a file, another purpose.
        let outside = base + "/outside"
        try writeFile(outside + "/precious", [5])
        XCTAssertEqual(symlink(outside, base + "/shredvault-recover-aaaaaaaaaaaaaaaa"), 0)
        try writeFile(base + "/shredvault-recover-bbbbbbbbbbbbbbbb", [4])
        try writeFile(base + "/shredvault-recover-notahexname12345/x", [3])
        try writeFile(base + "/shredvault-recover-0123456789ABCDEF/x", [3])
        try writeFile(base + "/shredvault-recover-0123456789abcdef0/x", [3])
        try writeFile(base + "/shredvault-restore-0123456789abcdef/x", [2])
        // Another user's unlocked directory (root only can make one).
        let foreign = base + "/shredvault-recover-1111111111111111"
        if geteuid() == 0 {
            try writeFile(foreign + "/x", [1])
            XCTAssertEqual(chown(foreign, 65534, 65534), 0)
        }

        let scratch = try PrivateScratchDirectory(purpose: "recover", base: base)
        defer { scratch.remove() }
        XCTAssertNil(try Posix.status(abandoned), "the abandoned directory is removed with everything in it")
        XCTAssertNotNil(try Posix.status(live + "/config"), "a locked directory is a live job's")
        XCTAssertEqual(try Posix.status(base + "/shredvault-recover-aaaaaaaaaaaaaaaa")?.kind, .symlink)
        XCTAssertNotNil(try Posix.status(outside + "/precious"), "a symbolic link is never followed")
        XCTAssertEqual(try Posix.status(base + "/shredvault-recover-bbbbbbbbbbbbbbbb")?.kind, .regular)
        for kept in ["notahexname12345", "0123456789ABCDEF", "0123456789abcdef0"] {
            XCTAssertNotNil(try Posix.status(base + "/shredvault-recover-\(kept)/x"), kept)
        }
        XCTAssertNotNil(try Posix.status(base + "/shredvault-restore-0123456789abcdef/x"), "another purpose")
        if geteuid() == 0 { XCTAssertNotNil(try Posix.status(foreign + "/x"), "another user's directory") }

        // The live job dies: its lock goes with it, and the next job removes its directory.
        close(liveFD)
        let next = try PrivateScratchDirectory(purpose: "recover", base: base)
        XCTAssertNil(try Posix.status(live))
        XCTAssertNotNil(try Posix.status(scratch.path), "a live object's directory stays")
        next.remove()
    }
}
