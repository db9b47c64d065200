import COpenSSL

/// Compares two byte arrays in time independent of their contents (`CRYPTO_memcmp`).
/// Arrays of different lengths are unequal; the length comparison itself is not hidden.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { left in b.withUnsafeBytes { right in constantTimeEquals(left, right) } }
}

/// Constant-time equality of two buffers (`CRYPTO_memcmp`); different lengths are unequal.
func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    guard a.count > 0, let left = a.baseAddress, let right = b.baseAddress else { return true }
    return CRYPTO_memcmp(left, right, a.count) == 0
}

/// Overwrites `buffer` with zeros in a way the compiler cannot elide (`OPENSSL_cleanse`).
func cleanse(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    OPENSSL_cleanse(base, buffer.count)
}

/// Cleanses the contents of a temporary array that held secret bytes.
func cleanse(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { cleanse($0) }
}
