import Foundation
import XCTest

@testable import VaultCrypto

/// Hex helpers for test vectors.
enum Hex {
    static func decode(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
        let utf8 = Array(text.utf8)
        precondition(utf8.count % 2 == 0, "odd-length hex in test data")
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: preconditionFailure("bad hex digit in test data")
            }
        }
        return stride(from: 0, to: utf8.count, by: 2).map { nibble(utf8[$0]) << 4 | nibble(utf8[$0 + 1]) }
    }

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

/// A Wycheproof integer that some files write as a JSON number and others as a string.
struct FlexibleInt: Decodable, Sendable {
    let value: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            value = number
        } else {
            let text = try container.decode(String.self)
            guard let number = Int(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an integer: \(text)")
            }
            value = number
        }
    }
}

/// Wycheproof `flags`: normally a list of strings; tolerate a single string or a
/// Python-style list rendered as a string ("['A', 'B']").
struct Flags: Decodable, Sendable {
    let values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let list = try? container.decode([String].self) {
            values = list
        } else {
            let text = try container.decode(String.self)
            values = text.split(whereSeparator: { "[], '\"".contains($0) }).map(String.init)
        }
    }

    func contains(_ flag: String) -> Bool { values.contains(flag) }
}

/// Loads and decodes a JSON vector file from the test bundle's `Vectors` directory.
func loadVectors<T: Decodable>(_ fileName: String, as type: T.Type) throws -> T {
    let directory = try XCTUnwrap(Bundle.module.url(forResource: "Vectors", withExtension: nil))
    let data = try Data(contentsOf: directory.appendingPathComponent(fileName))
    return try JSONDecoder().decode(T.self, from: data)
}

/// Returns the error `body` throws, or nil.
func caughtError(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Encrypts `plaintext` with Cobblestone-256, writing it in pieces of the given sizes (cycled).
func cobblestoneEncrypt(
    key: SecretBytes, context: [UInt8], plaintext: [UInt8], salt: [UInt8]? = nil, pieces: [Int] = [16384]
) throws -> [UInt8] {
    var ciphertext: [UInt8] = []
    let encryptor = try CobblestoneEncryptor(inputKey: key, context: context, salt: salt) { ciphertext += $0 }
    try writeInPieces(plaintext, pieces: pieces) { try encryptor.write($0) }
    try encryptor.finish()
    return ciphertext
}

/// Calls `write` with consecutive slices of `bytes`, sized by cycling through `pieces`.
func writeInPieces(_ bytes: [UInt8], pieces: [Int], _ write: (UnsafeRawBufferPointer) throws -> Void) throws {
    try bytes.withUnsafeBytes { all in
        var offset = 0
        var index = 0
        while offset < all.count {
            let count = min(pieces[index % pieces.count], all.count - offset)
            try write(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + count)]))
            offset += count
            index += 1
        }
    }
}

/// A ciphertext source over an array that returns short reads, cycling through `steps`.
func arraySource(_ data: [UInt8], steps: [Int] = [1 << 20]) -> (UnsafeMutableRawBufferPointer) throws -> Int {
    var position = 0
    var call = 0
    return { buffer in
        let count = min(buffer.count, steps[call % steps.count], data.count - position)
        call += 1
        data.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + position, byteCount: count)
        }
        position += count
        return count
    }
}

/// What a streaming decryption released before it ended, and how it ended.
struct DecryptionOutcome {
    var plaintext: [UInt8] = []
    var error: (any Error)?
}

/// Decrypts by calling `read` with a `readSize`-byte buffer until it returns 0 or throws.
func drain(_ decryptor: CobblestoneDecryptor, readSize: Int) -> DecryptionOutcome {
    var outcome = DecryptionOutcome()
    var buffer = [UInt8](repeating: 0, count: readSize)
    do {
        while true {
            let count = try buffer.withUnsafeMutableBytes { try decryptor.read(into: $0) }
            if count == 0 { break }
            outcome.plaintext += buffer[..<count]
        }
    } catch {
        outcome.error = error
    }
    return outcome
}

/// Decrypts a whole ciphertext held in memory.
func cobblestoneDecrypt(
    key: SecretBytes, context: [UInt8], ciphertext: [UInt8], readSize: Int = 65536, steps: [Int] = [1 << 20]
) throws -> DecryptionOutcome {
    let decryptor = try CobblestoneDecryptor(inputKey: key, context: context, source: arraySource(ciphertext, steps: steps))
    return drain(decryptor, readSize: readSize)
}
