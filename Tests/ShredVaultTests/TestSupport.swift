import Foundation
import XCTest
import VaultArchive
import VaultCrypto
@testable import ShredVault

/// A fresh temporary directory removed at the end of the test.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "shredvault-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    test.addTeardownBlock { try? Posix.removeTree(path) }
    return path
}

func writeFile(_ path: String, _ bytes: [UInt8], mode: Int = 0o644, mtime: Int64 = 1_700_000_000) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw VaultError.io(operation: "create", path: path, errno: 0) }
    try FileManager.default.setAttributes([.posixPermissions: mode, .modificationDate: Date(timeIntervalSince1970: TimeInterval(mtime))], ofItemAtPath: path)
}

/// Deterministic pseudo-random bytes (xorshift), compressible when `text` is true.
func pseudoRandomBytes(_ count: Int, seed: UInt64, text: Bool = false) -> [UInt8] {
    var state = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    let alphabet = Array("the quick brown fox jumps over a lazy dog\n".utf8)
    for i in 0..<count {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        out[i] = text ? alphabet[Int(state % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: state >> 24)
    }
    return out
}

/// A recursive snapshot of a tree: relative path → (kind, bytes, mode, mtime), for exact comparisons.
struct TreeSnapshot: Equatable {
    struct Item: Equatable { var isDirectory: Bool; var contents: [UInt8]; var mode: UInt32; var mtime: Int64 }
    var items: [String: Item] = [:]
    /// Every relative path as UTF-8 bytes, sorted: `items` is keyed by String, whose equality (and hashing) is Unicode
    /// canonical equivalence, so it alone cannot tell "é" from "e" + U+0301.
    var paths: [[UInt8]] = []

    init(_ root: String) throws {
        func visit(_ rel: String?) throws {
            let dir = rel.map { root + "/" + $0 } ?? root
            for name in try Posix.listDirectory(dir) {
                let r = rel.map { $0 + "/" + name } ?? name
                let st = try Posix.status(root + "/" + r)!
                paths.append(Array(r.utf8))
                if st.kind == .directory {
                    items[r] = Item(isDirectory: true, contents: [], mode: st.mode, mtime: st.mtime)
                    try visit(r)
                } else {
                    let data = try Data(contentsOf: URL(fileURLWithPath: root + "/" + r))
                    items[r] = Item(isDirectory: false, contents: Array(data), mode: st.mode, mtime: st.mtime)
                }
            }
        }
        try visit(nil)
        paths.sort { $0.lexicographicallyPrecedes($1) }
    }
}

let testKey = SecretBytes(copying: (0..<32).map { UInt8($0) })

func testHeader(user: String = "u0000001", bundleId: [UInt8] = Array(repeating: 0xab, count: 16)) -> BundleHeader {
    BundleHeader(vaultId: BundleHeader.zeroId, bundleId: bundleId, createdAt: 1_795_910_400,
                 expiryDay: CivilDay(iso: "2027-02-26")!, userId: UserID(user)!)
}

/// A minimal ustar writer for crafting hostile archives the real writer refuses to produce.
struct UstarBuilder {
    var bytes: [UInt8] = []

    static let posixMagic = Array("ustar\u{0}00".utf8)
    /// GNU tar's header magic and version ("ustar  \0").
    static let gnuMagic = Array("ustar  \u{0}".utf8)

    /// Adds one header block (and `contents`, padded). `name` is stored as given, byte for byte, in the 100-byte name
    /// field; `patch` edits the block before its checksum is computed.
    mutating func add(name: String, type: UInt8 = UInt8(ascii: "0"), contents: [UInt8] = [], mode: UInt32 = 0o644,
                      mtime: Int64 = 1_700_000_000, linkName: String = "", magic: [UInt8] = posixMagic,
                      patch: (inout [UInt8]) -> Void = { _ in }) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: [UInt8], _ offset: Int, _ width: Int) { for (i, b) in s.prefix(width).enumerated() { h[offset + i] = b } }
        func octal(_ v: Int64, _ width: Int) -> [UInt8] {
            let s = String(v, radix: 8)
            return Array((String(repeating: "0", count: width - 1 - s.count) + s).utf8) + [0]
        }
        put(Array(name.utf8), 0, 100)
        put(octal(Int64(mode), 8), 100, 8)
        put(octal(0, 8), 108, 8)
        put(octal(0, 8), 116, 8)
        put(octal(Int64(contents.count), 12), 124, 12)
        put(octal(mtime, 12), 136, 12)
        put(Array(repeating: UInt8(ascii: " "), count: 8), 148, 8)
        h[156] = type
        put(Array(linkName.utf8), 157, 100)
        put(magic, 257, 8)
        patch(&h)
        let sum = h.reduce(0) { $0 + Int64($1) }
        put(Array(String(format: "%06o", sum).utf8) + [0, UInt8(ascii: " ")], 148, 8)
        bytes += h
        bytes += contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    /// Adds a pax extended header (`x`, or `type`) holding `records` in order, each `LENGTH KEY=VALUE\n`, with the
    /// value's bytes as given.
    mutating func addPax(_ records: [(String, [UInt8])], type: UInt8 = UInt8(ascii: "x")) {
        var body = [UInt8]()
        for (key, value) in records {
            let rest = [0x20] + Array(key.utf8) + [UInt8(ascii: "=")] + value + [0x0a]
            var length = rest.count + 1
            while String(length).utf8.count + rest.count != length { length += 1 }
            body += Array(String(length).utf8) + rest
        }
        add(name: "PaxHeader/entry", type: type, contents: body)
    }

    /// Adds a correct manifest for `entries` (files only, in order).
    mutating func addManifest(_ header: BundleHeader, _ entries: [Manifest.Entry]) throws {
        let m = Manifest(bundleId: header.bundleIdHex, userId: header.userId.rawValue, entries: entries)
        add(name: Manifest.entryPath, contents: try m.encoded())
    }

    func finished() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}

func fileEntry(_ path: String, _ contents: [UInt8], mode: UInt32 = 0o644, mtime: Int64 = 1_700_000_000) throws -> Manifest.Entry {
    .init(path: path, type: .file, size: Int64(contents.count), mode: mode, mtime: mtime, sha256: Hex.encode(try SHA256.hash(contents)))
}

/// Encrypts an arbitrary tar stream as a bundle: header ‖ Cobblestone(zstd(tar)).
func craftBundle(header: BundleHeader, tar: [UInt8], key: SecretBytes = testKey, zstdFrames: Int = 1, trailingPlaintext: [UInt8] = []) throws -> [UInt8] {
    var out = header.encoded()
    var compressed = [UInt8]()
    let parts = zstdFrames == 1 ? [tar] : [Array(tar[0..<tar.count / 2]), Array(tar[(tar.count / 2)...])]
    for part in parts {
        let c = try ZstdCompressor(level: 3) { compressed += $0 }
        try part.withUnsafeBytes { try c.write($0) }
        try c.finish()
    }
    compressed += trailingPlaintext
    var payload = [UInt8]()
    let e = try CobblestoneEncryptor(inputKey: key, context: header.encoded()) { payload += $0 }
    try e.write(compressed)
    try e.finish()
    out += payload
    return out
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Fast byte-string search (Foundation's native search; generic `firstRange(of:)` is slow in debug builds).
func containsBytes(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    Data(haystack).range(of: Data(needle)) != nil
}

/// A SoftHSM2 token of its own for one test: `<directory>/softhsm2.conf` pointing at `<directory>/tokens`,
/// `SOFTHSM2_CONF` set for this process (read when the module initializes), a token made with softhsm2-util and
/// its user PIN in a 0600 file. SoftHSM2 is required (CI installs it); without it the test fails saying so.
final class SoftHSMToken {
    static let defaultModule = "/usr/lib/softhsm/libsofthsm2.so"
    let module = ProcessInfo.processInfo.environment["SHREDVAULT_TEST_PKCS11_MODULE"] ?? SoftHSMToken.defaultModule
    let label = "shredvault-vault-test"
    let pinFile: String
    let configuration: String

    init(directory: String) throws {
        guard FileManager.default.fileExists(atPath: module), FileManager.default.isExecutableFile(atPath: "/usr/bin/softhsm2-util") else {
            throw VaultError.notFound(path: module, what: "SoftHSM2 (apt-get install softhsm2)")
        }
        try FileManager.default.createDirectory(atPath: directory + "/tokens", withIntermediateDirectories: true)
        configuration = directory + "/softhsm2.conf"
        try writeFile(configuration, Array("directories.tokendir = \(directory)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".utf8))
        setenv("SOFTHSM2_CONF", configuration, 1)
        let pin = "vault-test-pin-\(UInt32.random(in: 1000...9999))"
        try Self.run("/usr/bin/softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-" + pin])
        pinFile = directory + "/pin"
        try writeFile(pinFile, Array(pin.utf8), mode: 0o600)
    }

    /// Labels of the vault's root objects on the token, as another process (opensc's pkcs11-tool) lists them.
    func rootObjectLabels() throws -> [String] {
        let pin = try String(contentsOfFile: pinFile, encoding: .utf8)
        let out = try Self.run("/usr/bin/pkcs11-tool", ["--module", module, "--token-label", label, "--login", "--pin", pin, "--list-objects", "--type", "secrkey"])
        return out.split(separator: "\n").compactMap { line in
            guard let r = line.range(of: "label:") else { return nil }
            let value = line[r.upperBound...].trimmingCharacters(in: .whitespaces)
            return value.hasPrefix("shredvault-root-") ? value : nil
        }
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw VaultError.invalidArgument("\(tool) exited \(process.terminationStatus): \(text)")
        }
        return text
    }
}
