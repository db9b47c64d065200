#ifndef SHREDVAULT_CSHA256_H
#define SHREDVAULT_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// An incremental SHA-256 (FIPS 180-4) whose bytes can be hashed two streams at a time.
///
/// Hashing is OpenSSL's (SHA256_Update/SHA256_Final, its fastest code for the CPU), except for blocks hashed in
/// pairs by `svsha_update_paired`: on x86-64 CPUs with the SHA extensions, one 64-byte block of each of two streams
/// is compressed in the same loop, so the two dependency chains of sha256rnds2 overlap (one stream alone waits
/// on the instruction's latency). Each stream's digest is the SHA-256 of its own bytes, in order, whichever blocks
/// were paired.
///
/// A stream can *lend* a buffer (`svsha_lend`): its bytes are hashed later, paired with the next bytes hashed
/// into another stream that names it, and whatever is left when the lender settles (`svsha_settle`, or its next
/// update, lend or final). The lent buffer must stay unchanged until then.
typedef struct svsha svsha;

/// A new stream, or NULL when out of memory.
svsha *svsha_new(void);
/// Zeroes and frees the stream (NULL is ignored). The stream must have no lent bytes left (settle first).
void svsha_free(svsha *s);
/// Settles lent bytes, then hashes `n` bytes. Returns 1, or 0 on an OpenSSL failure.
int svsha_update(svsha *s, const void *p, size_t n);
/// Settles earlier lent bytes, then lends `n` bytes at `p` (see above). Returns 1, or 0 on an OpenSSL failure.
int svsha_lend(svsha *s, const void *p, size_t n);
/// Hashes what is left of the lent bytes. Returns 1, or 0 on an OpenSSL failure.
int svsha_settle(svsha *s);
/// Settles `s`, then hashes `n` bytes at `p` into `s`, their whole blocks paired with the bytes `lender` lent (when
/// `lender` is not NULL, not `s`, and the CPU has the SHA extensions); the lent bytes paired are hashed into
/// `lender` and no longer lent. Returns 1, or 0 on an OpenSSL failure.
int svsha_update_paired(svsha *s, const void *p, size_t n, svsha *lender);
/// Settles, writes the 32-byte digest to `out` and starts the stream over. Returns 1, or 0 (and zeros in `out`) when
/// this or any earlier call on the stream since the last final failed.
int svsha_final(svsha *s, uint8_t out[32]);
/// Whether pairs are hashed together on this CPU (1) or one after the other (0).
int svsha_pairing_available(void);
/// Tests: 0 turns pairing off in this process (every byte goes through OpenSSL alone), 1 back on where available.
void svsha_set_pairing(int on);
/// Blocks compressed in pairs so far in this process (tests check that pairing happened).
uint64_t svsha_paired_blocks(void);

#endif
