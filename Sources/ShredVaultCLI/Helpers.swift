import ShredVault

func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
func hexBytes(_ text: String) -> [UInt8]? { Hex.decode(text) }
func randomBundleId() throws -> [UInt8] { try BundleHeader.randomId() }
