/// A fixed-size buffer for key material and other secrets.
///
/// The bytes are zeroed (with `OPENSSL_cleanse`) when the object is released, compared in
/// constant time, and never printed: `description` only reveals the length. Copy bytes out only
/// through `hexEncodedString()` (to write a key file) or `withUnsafeBytes`.
///
/// `@unchecked Sendable`: the object may be shared between tasks, but concurrent mutation
/// through `withUnsafeMutableBytes` is the caller's responsibility to avoid.
public final class SecretBytes: Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    @unchecked Sendable
{
    /// Exactly `count` bytes; the allocation is at least one byte so `baseAddress` is never nil.
    private let storage: UnsafeMutableRawBufferPointer
    private let allocationSize: Int

    /// Test hook: called from `deinit` with the buffer after it was wiped and before it is freed.
    var releaseObserverForTesting: ((UnsafeRawBufferPointer) -> Void)?

    /// Creates `count` zero bytes.
    public init(count: Int) {
        precondition(count >= 0, "SecretBytes count must not be negative")
        allocationSize = Swift.max(count, 1)
        let base = UnsafeMutableRawPointer.allocate(byteCount: allocationSize, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: allocationSize)
        storage = UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    /// Copies `bytes` into a new secret buffer. The caller remains responsible for its own copy.
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
            storage.copyMemory(from: UnsafeRawBufferPointer(source))
        }
        if copied == nil {
            for (index, byte) in bytes.enumerated() { storage[index] = byte }
        }
    }

    /// Parses hexadecimal (upper or lower case, even length, no separators).
    /// - Throws: `CryptoError.invalidLength` if the text is not valid hex.
    public convenience init(hex: String) throws {
        let utf8 = hex.utf8
        guard utf8.count % 2 == 0 else {
            throw CryptoError.invalidLength("hex text has an odd number of digits")
        }
        self.init(count: utf8.count / 2)
        var index = utf8.startIndex
        for offset in 0..<count {
            let high = Self.nibble(utf8[index])
            index = utf8.index(after: index)
            let low = Self.nibble(utf8[index])
            index = utf8.index(after: index)
            guard let high, let low else {
                throw CryptoError.invalidLength("hex text contains a non-hex character")
            }
            storage[offset] = high << 4 | low
        }
    }

    /// `count` bytes from the OpenSSL CSPRNG (`RAND_bytes`).
    public static func random(count: Int) throws -> SecretBytes {
        let secret = SecretBytes(count: count)
        try secret.withUnsafeMutableBytes { try SecureRandom.fill($0) }
        return secret
    }

    deinit {
        wipe()
        releaseObserverForTesting?(UnsafeRawBufferPointer(storage))
        storage.baseAddress!.deallocate()
    }

    /// The number of secret bytes.
    public var count: Int { storage.count }

    /// Calls `body` with read access to the bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    /// Calls `body` with write access to the bytes. Do not let the pointer escape.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(storage)
    }

    /// Lower-case hex of the secret. An explicit export, meant only for writing key files.
    public func hexEncodedString() -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: count * 2) { output in
            digits.withUTF8Buffer { table in
                for (offset, byte) in storage.enumerated() {
                    output[2 * offset] = table[Int(byte >> 4)]
                    output[2 * offset + 1] = table[Int(byte & 0x0f)]
                }
            }
            return count * 2
        }
    }

    /// Constant-time comparison of the contents (only the lengths are compared in variable time).
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in constantTimeEquals(left, right) }
        }
    }

    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }

    /// Overwrites the whole allocation with zeros. Called on release; tests call it directly.
    func wipe() {
        cleanse(UnsafeMutableRawBufferPointer(start: storage.baseAddress, count: allocationSize))
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension SecretBytes {
    /// A new secret holding `range` of this one (used to split derived key material).
    func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        let result = SecretBytes(count: range.count)
        result.storage.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[range]))
        return result
    }
}
