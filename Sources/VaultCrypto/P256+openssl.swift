import COpenSSL

/// P-256 arithmetic on OpenSSL's `EC_GROUP`/`EC_POINT`/`BIGNUM` (its x86-64 `nistz256` code: constant-time
/// fixed-window scalar multiplication, precomputed tables for the base point). The group is created once and
/// shared: OpenSSL never modifies an `EC_GROUP` after creation, so concurrent read-only use is safe.
/// ECDH here is exactly what OpenSSL's own ECDH does (`x(d·Q)`), without the per-call provider lookups,
/// key-object imports and repeated peer checks of the `EVP_PKEY` route; every point that reaches it was
/// validated once when its `P256PublicKey` was made.
final class P256Group: @unchecked Sendable {
    let group: OpaquePointer
    let order: OpaquePointer

    private static let created: Result<P256Group, Error> = Result { try P256Group() }

    static func shared() throws -> P256Group { try created.get() }

    private init() throws {
        group = try checkOpenSSL(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), "EC_GROUP_new_by_curve_name")
        order = try checkOpenSSL(EC_GROUP_get0_order(group), "EC_GROUP_get0_order")
    }
    // Lives for the whole process; never freed.
}

/// A secret scalar in a BIGNUM flagged constant-time; cleared when released.
final class P256Scalar: @unchecked Sendable {
    let number: OpaquePointer

    private init(number: OpaquePointer) { self.number = number }

    deinit { BN_clear_free(number) }

    /// A uniformly random scalar in 1...n−1.
    static func random() throws -> P256Scalar {
        let group = try P256Group.shared()
        let scalar = P256Scalar(number: try checkOpenSSL(BN_secure_new(), "BN_secure_new"))
        repeat {
            try checkOpenSSL(BN_priv_rand_range_ex(scalar.number, group.order, 0, nil), "BN_priv_rand_range_ex")
        } while BN_is_zero(scalar.number) == 1
        BN_set_flags(scalar.number, BN_FLG_CONSTTIME)
        return scalar
    }

    /// A scalar from 32 big-endian bytes that the caller has range-checked.
    static func importing(_ bytes: SecretBytes) throws -> P256Scalar {
        let scalar = P256Scalar(number: try checkOpenSSL(BN_secure_new(), "BN_secure_new"))
        try bytes.withUnsafeBytes { raw in
            _ = try checkOpenSSL(
                BN_bin2bn(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(raw.count), scalar.number), "BN_bin2bn")
        }
        BN_set_flags(scalar.number, BN_FLG_CONSTTIME)
        return scalar
    }

    /// 32 bytes big-endian.
    func exported() throws -> SecretBytes { try Self.bytes(of: number) }

    /// A secret BIGNUM below 2^256 as 32 big-endian bytes.
    private static func bytes(of number: OpaquePointer) throws -> SecretBytes {
        let out = SecretBytes(count: P256PrivateKey.scalarSize)
        try out.withUnsafeMutableBytes { raw in
            guard BN_bn2binpad(number, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(raw.count)) == raw.count else {
                throw CryptoError.openSSLFailure("BN_bn2binpad")
            }
        }
        return out
    }

    /// d·G, the public point of this scalar.
    func publicPoint() throws -> P256Point {
        let group = try P256Group.shared()
        let point = try P256Point()
        try checkOpenSSL(EC_POINT_mul(group.group, point.point, number, nil, nil, nil), "EC_POINT_mul")
        return point
    }

    /// ECDH: the x-coordinate of d·Q, 32 bytes big-endian.
    func sharedSecret(with peer: P256Point) throws -> SecretBytes {
        let group = try P256Group.shared()
        let product = try P256Point()
        try checkOpenSSL(EC_POINT_mul(group.group, product.point, nil, peer.point, number, nil), "EC_POINT_mul")
        // Q has prime order n and 1 ≤ d < n, so d·Q is never infinity; checked anyway.
        guard EC_POINT_is_at_infinity(group.group, product.point) == 0 else {
            throw CryptoError.invalidPublicKey("the shared point is the point at infinity")
        }
        let x = try checkOpenSSL(BN_secure_new(), "BN_secure_new")
        defer { BN_clear_free(x) }
        try checkOpenSSL(EC_POINT_get_affine_coordinates(group.group, product.point, x, nil, nil), "EC_POINT_get_affine_coordinates")
        return try Self.bytes(of: x)
    }
}

/// One `EC_POINT` of the P-256 group. Read-only once made (shared between threads).
final class P256Point: @unchecked Sendable {
    let point: OpaquePointer

    init() throws {
        point = try checkOpenSSL(EC_POINT_new(try P256Group.shared().group), "EC_POINT_new")
    }

    deinit { EC_POINT_free(point) }

    /// Decodes an uncompressed SEC1 point and checks it explicitly: coordinates below p, on the curve, not
    /// infinity. (P-256 has cofactor 1, so every such point has the prime order n.)
    static func validated(x963: [UInt8]) throws -> P256Point {
        let group = try P256Group.shared()
        let decoded = try P256Point()
        guard EC_POINT_oct2point(group.group, decoded.point, x963, x963.count, nil) == 1 else {
            ERR_clear_error()
            throw CryptoError.invalidPublicKey("the coordinates are out of range or the point is not on the P-256 curve")
        }
        guard EC_POINT_is_on_curve(group.group, decoded.point, nil) == 1 else {
            ERR_clear_error()
            throw CryptoError.invalidPublicKey("the point is not on the P-256 curve")
        }
        guard EC_POINT_is_at_infinity(group.group, decoded.point) == 0 else {
            throw CryptoError.invalidPublicKey("the point is the point at infinity")
        }
        return decoded
    }

    /// The uncompressed encoding `04 ‖ X ‖ Y`.
    func x963() throws -> [UInt8] {
        let group = try P256Group.shared()
        var bytes = [UInt8](repeating: 0, count: P256PublicKey.x963Size)
        guard EC_POINT_point2oct(group.group, point, POINT_CONVERSION_UNCOMPRESSED, &bytes, bytes.count, nil) == bytes.count else {
            throw CryptoError.openSSLFailure("EC_POINT_point2oct")
        }
        return bytes
    }
}
