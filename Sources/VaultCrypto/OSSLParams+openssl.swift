import COpenSSL

/// One entry of an `OSSL_PARAM` array, described in Swift terms.
enum OSSLParamValue {
    /// A UTF-8 string (copied).
    case utf8(String)
    /// A C `int` (copied).
    case int32(Int32)
    /// An octet string, referenced: the buffer must stay valid for the duration of the call.
    case octets(UnsafeRawBufferPointer)
    /// An unsigned integer given big-endian (copied into the native order `OSSL_PARAM` wants, cleansed after).
    case unsignedBigEndian(UnsafeRawBufferPointer)
}

/// Calls `body` with a terminated `OSSL_PARAM` array built from `entries`.
///
/// `OSSL_PARAM` holds raw pointers to its keys and values, so they are copied into buffers that
/// live exactly as long as `body` runs, then cleansed and freed.
func withOSSLParams<R>(
    _ entries: [(key: String, value: OSSLParamValue)],
    _ body: (UnsafePointer<OSSL_PARAM>) throws -> R
) throws -> R {
    var arena: [UnsafeMutableRawBufferPointer] = []
    defer {
        for buffer in arena {
            cleanse(buffer)
            buffer.deallocate()
        }
    }
    func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        arena.append(buffer)
        return buffer
    }
    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(text.utf8)
        let buffer = allocate(utf8.count + 1)  // zero-filled, so NUL-terminated
        buffer.copyBytes(from: utf8)
        return buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
    }

    var params: [OSSL_PARAM] = []
    params.reserveCapacity(entries.count + 1)
    for (key, value) in entries {
        let keyPointer = UnsafePointer(cString(key))
        switch value {
        case .utf8(let text):
            let valuePointer = cString(text)
            params.append(OSSL_PARAM_construct_utf8_string(keyPointer, valuePointer, 0))
        case .int32(let number):
            let storage = allocate(MemoryLayout<Int32>.size)
            storage.storeBytes(of: number, as: Int32.self)
            params.append(OSSL_PARAM_construct_int(keyPointer, storage.baseAddress!.assumingMemoryBound(to: Int32.self)))
        case .octets(let bytes):
            // OpenSSL rejects a NULL data pointer even for zero length; give it a real one.
            let base = bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? allocate(1).baseAddress!
            params.append(OSSL_PARAM_construct_octet_string(keyPointer, base, bytes.count))
        case .unsignedBigEndian(let bytes):
            let storage = allocate(bytes.count)
            for (i, b) in bytes.enumerated() { storage[bytes.count - 1 - i] = b }  // little-endian host (x86-64, arm64)
            params.append(OSSL_PARAM_construct_BN(keyPointer, storage.baseAddress!.assumingMemoryBound(to: UInt8.self), storage.count))
        }
    }
    params.append(OSSL_PARAM_construct_end())
    return try params.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
