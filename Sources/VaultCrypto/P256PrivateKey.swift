/// A P-256 private key used for ECDH. The scalar lives in an OpenSSL BIGNUM (constant-time flag), cleared
/// when the key is released; it leaves only through `rawScalar()`, as `SecretBytes`.
///
/// `@unchecked Sendable`: the scalar is never modified after creation; concurrent derivations only read it.
public final class P256PrivateKey: @unchecked Sendable {
    /// Length of the big-endian private scalar.
    public static let scalarSize = 32

    /// n − 1, where n is the order of the P-256 base point.
    private static let orderMinusOne: [UInt8] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x50,
    ]

    private let scalar: P256Scalar
    /// The matching public key.
    public let publicKey: P256PublicKey

    private init(scalar: P256Scalar) throws {
        self.scalar = scalar
        publicKey = try P256PublicKey(computed: scalar.publicPoint())
    }

    /// A new random key pair.
    public static func generate() throws -> P256PrivateKey {
        try P256PrivateKey(scalar: P256Scalar.random())
    }

    /// Imports a 32-byte big-endian scalar in 1...n−1.
    /// - Throws: `invalidKeySize` for another length, `invalidLength` for a scalar out of range.
    public init(rawScalar: SecretBytes) throws {
        guard rawScalar.count == Self.scalarSize else {
            throw CryptoError.invalidKeySize(expected: Self.scalarSize, actual: rawScalar.count)
        }
        guard Self.isInRange(rawScalar) else {
            throw CryptoError.invalidLength("a P-256 private scalar must be between 1 and n - 1")
        }
        let scalar = try P256Scalar.importing(rawScalar)
        self.scalar = scalar
        publicKey = try P256PublicKey(computed: scalar.publicPoint())
    }

    /// The private scalar, 32 bytes big-endian (export for sealing or storage).
    public func rawScalar() throws -> SecretBytes { try scalar.exported() }

    /// ECDH with `peer`: the 32-byte x-coordinate of the shared point.
    public func sharedSecret(with peer: P256PublicKey) throws -> SecretBytes {
        try scalar.sharedSecret(with: peer.point)
    }

    /// 1 ≤ d ≤ n − 1, computed without branching on the scalar's bytes: (n − 1) − d must not
    /// borrow, and d must not be zero.
    private static func isInRange(_ scalar: SecretBytes) -> Bool {
        scalar.withUnsafeBytes { d in
            var borrow = 0
            var any: UInt8 = 0
            for index in stride(from: scalarSize - 1, through: 0, by: -1) {
                let difference = Int(orderMinusOne[index]) - Int(d[index]) - borrow
                borrow = (difference >> 8) & 1
                any |= d[index]
            }
            return (borrow == 0) && (any != 0)
        }
    }
}
