import XCTest

@testable import VaultCrypto

/// A ciphertext held in windows of `window` bytes, read through both a copying source and an in-place view that
/// share one position, as the bundle reader's buffered input does: a view never crosses a window's end.
private final class WindowedCiphertext {
    let bytes: [UInt8]
    let window: Int
    private(set) var position = 0
    /// Views that handed out a whole sealed chunk (opened in place).
    private(set) var wholeUnits = 0
    /// When set, a view hands out one byte more than asked.
    var overlong = false

    init(_ bytes: [UInt8], window: Int) {
        self.bytes = bytes
        self.window = window
    }

    private func available(_ wanted: Int) -> Int {
        min(wanted, bytes.count - position, window - position % window)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = available(buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + count)])) }
        position += count
        return count
    }

    func view(_ wanted: Int) throws -> UnsafeRawBufferPointer {
        var count = available(wanted)
        if overlong && count > 0 && position + count < bytes.count { count += 1 }
        if count == Cobblestone256.sealedChunkSize { wholeUnits += 1 }
        // The array outlives every view, which is used before the next call.
        let view = bytes.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[position..<(position + count)]) }
        position += count
        return view
    }

    func decryptor(key: SecretBytes, context: [UInt8]) throws -> CobblestoneDecryptor {
        try CobblestoneDecryptor(inputKey: key, context: context, view: { try self.view($0) }, source: { try self.read(into: $0) })
    }
}

/// The decryptor opening chunks where the source holds them (`view`): same plaintext, same refusals.
final class CobblestoneViewTests: XCTestCase {
    private let chunk = Cobblestone256.chunkSize
    private let sealedChunk = Cobblestone256.sealedChunkSize
    private let header = Cobblestone256.headerSize
    /// Window sizes: the reader's 256 KiB, a few chunks and a bit, exactly one chunk, and smaller than one.
    private let windows = [1 << 18, 3 * Cobblestone256.sealedChunkSize + 7, Cobblestone256.sealedChunkSize, 5000, 1]

    func testViewedDecryptionGivesThePlaintextAndOpensWholeChunksInPlace() throws {
        let key = try SecretBytes.random(count: 32)
        let context = Array("viewed".utf8)
        for size in [0, 1, 16383, 16384, 16385, 5 * 16384 + 99, (1 << 20) + 3] {
            let message = try SecureRandom.bytes(count: size)
            let ciphertext = try cobblestoneEncrypt(key: key, context: context, plaintext: message, pieces: [1, 16384, 5000])
            for window in windows {
                let source = WindowedCiphertext(ciphertext, window: window)
                let outcome = drain(try source.decryptor(key: key, context: context), readSize: 10000)
                XCTAssertNil(outcome.error, "size \(size), window \(window)")
                XCTAssertTrue(outcome.plaintext == message, "size \(size), window \(window)")
                XCTAssertEqual(source.position, ciphertext.count)
                if window == 1 << 18 && size >= 2 * chunk {
                    XCTAssertGreaterThan(source.wholeUnits, 0, "size \(size): chunks were opened in place")
                }
                if window < sealedChunk { XCTAssertEqual(source.wholeUnits, 0) }
            }
        }
    }

    func testAFlippedByteFailsItsChunkWhereverTheChunkLies() throws {
        let key = try SecretBytes.random(count: 32)
        let message = try SecureRandom.bytes(count: 4 * chunk + 10)
        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: message)
        for window in windows.dropLast() {
            // The first and last byte and a middle byte of each chunk, the tags included.
            for c in 0...4 {
                let start = header + c * sealedChunk
                let end = min(start + sealedChunk, ciphertext.count)
                for index in [start, (start + end) / 2, end - 1] {
                    var tampered = ciphertext
                    tampered[index] ^= 0x80
                    let outcome = drain(try WindowedCiphertext(tampered, window: window).decryptor(key: key, context: []), readSize: chunk)
                    XCTAssertEqual(outcome.error as? CryptoError, .authenticationFailed, "window \(window), byte \(index)")
                    // Only the chunks before the damaged one were released.
                    XCTAssertEqual(outcome.plaintext.count, c * chunk, "window \(window), byte \(index)")
                    XCTAssertTrue(outcome.plaintext[...] == message[..<(c * chunk)])
                }
            }
        }
    }

    func testTruncatedOrExtendedCiphertextFails() throws {
        let key = try SecretBytes.random(count: 32)
        let message = try SecureRandom.bytes(count: 3 * chunk + 100)
        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: message)
        var cuts: Set<Int> = [header, header + 1]
        for boundary in 1...3 {
            let end = header + boundary * sealedChunk
            cuts.formUnion([end - 1, end, end + 1, end + 16])
        }
        for window in windows.dropLast() {
            for cut in cuts.sorted() {
                let outcome = drain(try WindowedCiphertext(Array(ciphertext.prefix(cut)), window: window).decryptor(key: key, context: []),
                                    readSize: 65536)
                XCTAssertNotNil(outcome.error, "window \(window), cut \(cut)")
                XCTAssertLessThan(outcome.plaintext.count, message.count)
            }
            let extended = drain(try WindowedCiphertext(ciphertext + [0], window: window).decryptor(key: key, context: []), readSize: 65536)
            XCTAssertNotNil(extended.error, "window \(window): a byte after the final chunk")
        }
    }

    func testAViewLongerThanAskedIsRefused() throws {
        let key = try SecretBytes.random(count: 32)
        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: SecureRandom.bytes(count: 3 * chunk))
        let source = WindowedCiphertext(ciphertext, window: 1 << 18)
        source.overlong = true
        let outcome = drain(try source.decryptor(key: key, context: []), readSize: 65536)
        guard case CryptoError.invalidLength? = outcome.error as? CryptoError else {
            return XCTFail("got \(String(describing: outcome.error))")
        }
        XCTAssertTrue(outcome.plaintext.isEmpty)
    }
}
