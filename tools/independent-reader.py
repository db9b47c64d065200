#!/usr/bin/env python3
"""Decrypt a ShredVault bundle without any ShredVault code, from vault-format.md alone.

Usage: tools/independent-reader.py BUNDLE KEYFILE > payload.tar

Parses the header (vault-format.md §2.1), derives the Cobblestone-256 key, base nonce and
commitment with HKDF-Expand-SHA-512 (§2.3), checks the commitment, decrypts every 16 KiB chunk
with AES-256-GCM, enforces the always-short final chunk, checks that the plaintext is a standard
zstd frame with a content checksum (§2.4), and pipes it through `zstd -d` to stdout (a pax tar). Needs the Python `cryptography` package and the zstd tool.
"""
import hmac
import struct
import subprocess
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

CHUNK, TAG, SALT, COMMIT = 16384, 16, 24, 32


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = open(sys.argv[1], "rb").read()
    key = bytes.fromhex(open(sys.argv[2]).read().strip())
    if data[:8] != b"SVBUNDL\n":
        sys.exit("not a bundle")
    version, algorithm, header_len, n, flags = struct.unpack(">HHHBB", data[8:16])
    if version != 1 or algorithm != 1 or flags != 0 or header_len != 92 + n:
        sys.exit(f"unsupported header: version {version} algorithm {algorithm}")
    header = data[:header_len]
    user = header[92:].decode("ascii")
    expiry_days = struct.unpack(">I", header[56:60])[0]
    print(f"user {user}, bundle {header[32:48].hex()}, expiry day {expiry_days}", file=sys.stderr)

    payload = data[header_len:]
    if len(payload) < SALT + COMMIT + TAG:
        sys.exit("truncated")
    salt, commitment = payload[:SALT], payload[SALT:SALT + COMMIT]
    info = b"c2sp.org/chunked-encryption@v1+" + b"AEAD_AES_256_GCM" + b"\x00" + salt + header
    okm = HKDFExpand(algorithm=hashes.SHA512(), length=76, info=info).derive(key)
    aead_key, base_nonce, expected = okm[:32], okm[32:44], okm[44:76]
    if not hmac.compare_digest(commitment, expected):
        sys.exit("commitment mismatch: wrong key or modified header")

    aead = AESGCM(aead_key)
    body = payload[SALT + COMMIT:]
    plain = bytearray()
    offset, counter = 0, 0
    while True:
        unit = body[offset:offset + CHUNK + TAG]
        final = len(unit) < CHUNK + TAG
        if final and len(unit) < TAG:
            sys.exit("truncated")
        nonce = (int.from_bytes(base_nonce, "big") ^ counter).to_bytes(12, "big")
        plain += aead.decrypt(nonce, unit, b"")
        offset += len(unit)
        counter += 1
        if final:
            break
    # §2.4: one standard RFC 8878 frame (magic 0xFD2FB528, little-endian) whose Frame_Header_Descriptor has
    # Content_Checksum_flag (bit 2) set, the reserved bit 3 clear and no dictionary id (bits 0-1); the zstd tool
    # alone would also decode legacy and skippable frames and frames without a checksum.
    if len(plain) < 5 or plain[:4] != b"\x28\xb5\x2f\xfd":
        sys.exit("the plaintext does not start with a zstd frame (magic 0xfd2fb528)")
    if plain[4] & 0x0F != 0x04:
        sys.exit("the zstd frame header descriptor is 0x%02x: no content checksum, a reserved bit or a dictionary" % plain[4])
    tar = subprocess.run(["zstd", "-dc"], input=bytes(plain), stdout=subprocess.PIPE, check=True).stdout
    sys.stdout.buffer.write(tar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
