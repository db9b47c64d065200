/// A validated P-256 public key: always an on-curve point other than infinity.
public struct P256PublicKey: Equatable, Sendable {
    /// Length of the uncompressed SEC1 / X9.63 encoding `04 ‖ X ‖ Y`.
    public static let x963Size = 65

    /// The uncompressed point `04 ‖ X(32) ‖ Y(32)`.
    public let x963Representation: [UInt8]
    /// The decoded point, kept for key agreement.
    let point: P256Point

    /// Accepts only the 65-byte uncompressed encoding, and only points on the curve.
    /// - Throws: `CryptoError.invalidPublicKey` naming what is wrong (length, compressed or unknown
    ///   prefix, coordinates out of range, not on the curve).
    public init(x963Representation bytes: [UInt8]) throws {
        guard bytes.count == Self.x963Size else {
            throw CryptoError.invalidPublicKey("expected a 65-byte uncompressed point, got \(bytes.count) bytes")
        }
        guard bytes[0] == 0x04 else {
            throw CryptoError.invalidPublicKey("only the uncompressed encoding (prefix 04) is accepted")
        }
        point = try P256Point.validated(x963: bytes)
        x963Representation = bytes
    }

    /// The public key of a scalar this module computed (d·G of a valid d is valid by construction).
    init(computed point: P256Point) throws {
        self.point = point
        x963Representation = try point.x963()
    }

    public static func == (lhs: P256PublicKey, rhs: P256PublicKey) -> Bool {
        lhs.x963Representation == rhs.x963Representation
    }
}
