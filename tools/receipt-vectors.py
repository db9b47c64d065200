#!/usr/bin/env python3
"""Known-answer vectors for deletion receipts (vault-format.md §6.3), made with Python's `cryptography` package
from the specification alone (no ShredVault code): a trust record file (§3.9) with fixed master and job keys,
receipt files signed as §3.10 says, and receipts a verifier must refuse. Writes samples/vectors/receipt/; the
Swift tests (ReceiptVectorTests) verify every file and require the stated outcome. ECDSA signatures are randomized,
so a rerun writes different (equally valid) files.

Usage: tools/receipt-vectors.py [OUTPUT_DIRECTORY]
"""
import hashlib, json, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def canonical(value):
    """Compact JSON, keys sorted, raw UTF-8, control characters escaped (the §6.3 encoding for ASCII keys)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key(scalar):
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    public = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    key_id = hashlib.sha256(b"shredvault.org/key-id@v1" + b"\x00" + public).digest()[:16]
    return private, public, key_id


def sign_raw(private, key_id, context, body):
    r, s = decode_dss_signature(private.sign(context + b"\x00" + body, ec.ECDSA(hashes.SHA256())))
    return key_id + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def receipt_file(text, signature, uppercase=False):
    hex_signature = signature.hex().upper() if uppercase else signature.hex()
    return (canonical({"receipt": text, "signature": hex_signature}) + "\n").encode()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "samples/vectors/receipt"
    os.makedirs(out, exist_ok=True)
    vault_id = bytes(range(0x30, 0x40)).hex()
    master, master_pub, master_id = key(0x1111111111111111111111111111111111111111111111111111111111111111)
    old_job, old_job_pub, old_job_id = key(0x2222222222222222222222222222222222222222222222222222222222222222)
    job, job_pub, job_id = key(0x3333333333333333333333333333333333333333333333333333333333333333)
    stranger, _, stranger_id = key(0x4444444444444444444444444444444444444444444444444444444444444444)
    added, rotated = 1795910400, 1796256000  # 2026-11-29T00:00:00Z, 2026-12-03T00:00:00Z
    record = canonical({
        "format": "shredvault-trust/v1", "vaultId": vault_id, "masterKey": master_pub.hex(), "masterKeyId": master_id.hex(),
        "serial": 2, "signedAt": rotated,
        "signers": [
            {"addedAt": added, "keyId": old_job_id.hex(), "publicKey": old_job_pub.hex(), "revokedAt": rotated, "role": "job"},
            {"addedAt": rotated, "keyId": job_id.hex(), "publicKey": job_pub.hex(), "role": "job"},
        ],
    })
    trust_signature = master.sign(b"shredvault.org/trust@v1" + b"\x00" + record.encode(), ec.ECDSA(hashes.SHA256()))
    with open(os.path.join(out, "trust"), "wb") as f:
        f.write((canonical({"record": record, "signature": trust_signature.hex()}) + "\n").encode())

    context = b"shredvault.org/receipt@v1"

    def receipt(request, completed, on_time, issued=None, destroyed=(), already=None, generation=None, seq=1):
        return {
            "format": "shredvault-receipt/v1", "vaultId": vault_id, "masterKeyId": master_id.hex(), "requestId": request,
            "userId": "u0100037", "received": "2026-11-30T09:30:00Z", "deadline": "2026-12-07", "completed": completed,
            "issued": issued or completed, "onTime": on_time, "destroyedKeys": list(destroyed), "alreadyDeletedBy": already,
            "rootGeneration": generation, "auditHead": {"seq": seq, "hash": hashlib.sha256(bytes([seq])).hexdigest()},
        }

    user_key = hashlib.sha256(b"user key").digest()[:16].hex()
    # A request id with a quote, a slash, a tab and non-ASCII text exercises the string encoding.
    shredded = receipt('DSR/2026 "0412"\tné', "2026-12-04T10:00:00Z", True, destroyed=[user_key], generation=8, seq=41)
    late = receipt("DSR-2026-0413", "2026-12-08T10:00:00Z", False, issued="2026-12-09T00:15:00Z", already='DSR/2026 "0412"\tné',
                   generation=9, seq=57)
    cases = []

    def write(name, content, expect, comment, facts=None):
        with open(os.path.join(out, name), "wb") as f:
            f.write(content)
        case = {"file": name, "expect": expect, "comment": comment}
        if facts is not None:
            case["receipt"] = facts
        cases.append(case)

    text = canonical(shredded)
    write("shredded.receipt", receipt_file(text, sign_raw(job, job_id, context, text.encode())), "valid",
          "signed by the active job credential", shredded)
    late_text = canonical(late)
    write("late-by-master.receipt", receipt_file(late_text, sign_raw(master, master_id, context, late_text.encode())), "valid",
          "issued late, after a user already deleted, signed by the master key", late)
    early = receipt("DSR-2026-0400", "2026-12-01T08:00:00Z", True, destroyed=[user_key], generation=3, seq=12)
    early_text = canonical(early)
    write("revoked-before.receipt", receipt_file(early_text, sign_raw(old_job, old_job_id, context, early_text.encode())), "valid",
          "signed by a credential before its revocation", early)

    edited = text.replace('"onTime":true', '"onTime":false').replace('"completed":"2026-12-04', '"completed":"2026-12-24')
    write("edited-text.receipt", receipt_file(edited, sign_raw(job, job_id, context, text.encode())), "refused",
          "the text was changed after it was signed")
    write("uppercase-signature.receipt", receipt_file(text, sign_raw(job, job_id, context, text.encode()), uppercase=True), "refused",
          "the same signature in upper-case hex: not the canonical file")
    spaced = text.replace('"onTime":true', '"onTime": true')
    write("non-canonical-text.receipt", receipt_file(spaced, sign_raw(job, job_id, context, spaced.encode())), "refused",
          "validly signed, but the signed text is not canonical JSON")
    write("stranger.receipt", receipt_file(text, sign_raw(stranger, stranger_id, context, text.encode())), "refused",
          "signed by a key the trust record does not list")
    write("wrong-context.receipt", receipt_file(text, sign_raw(job, job_id, b"shredvault.org/seal@v1", text.encode())), "refused",
          "signed under another object's context")
    after = receipt("DSR-2026-0414", "2026-12-05T08:00:00Z", True, destroyed=[user_key], generation=8, seq=44)
    after_text = canonical(after)
    write("revoked-after.receipt", receipt_file(after_text, sign_raw(old_job, old_job_id, context, after_text.encode())), "refused",
          "signed by a credential issued after its revocation")
    other = dict(shredded, vaultId=bytes(range(0x50, 0x60)).hex())
    other_text = canonical(other)
    write("other-vault.receipt", receipt_file(other_text, sign_raw(job, job_id, context, other_text.encode())), "refused",
          "names another vault")

    with open(os.path.join(out, "vectors.json"), "w", encoding="utf-8") as f:
        json.dump({"description": "ShredVault deletion receipts (vault-format.md §6.3); generated by tools/receipt-vectors.py with "
                                  "Python's cryptography package, independently of the Swift code",
                   "trust": "trust", "masterKeyId": master_id.hex(), "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
