// SHA-256 with two streams compressed together on CPUs with the x86 SHA extensions; see csha256.h.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "csha256.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct svsha {
    SHA256_CTX ctx;
    const uint8_t *lent;
    size_t lentLength;
    /// Set by any failed OpenSSL call; `svsha_final` then fails, so a digest is never computed from a gap.
    int failed;
};

static _Atomic uint64_t pairedBlocks;
static _Atomic int pairingOff;

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static int cpuHasShaExtensions(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

// The 64 round constants of FIPS 180-4 §4.2.2.
static const uint32_t roundConstants[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

// The state words a..h as the SHA instructions want them: (A,B,E,F) and (C,D,G,H), highest lane first.
SHA_TARGET static inline void loadState(const uint32_t *h, __m128i *abef, __m128i *cdgh) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);       // lanes: c d a b
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B); // lanes: h g f e
    *abef = _mm_alignr_epi8(dcba, hgfe, 8);
    *cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
}

SHA_TARGET static inline void storeState(uint32_t *h, __m128i abef, __m128i cdgh) {
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Four rounds (group g) of one stream: message words W plus constants, two rounds per sha256rnds2; afterwards ABEF
// holds the new (A,B,E,F) and CDGH the new (C,D,G,H).
#define FOUR_ROUNDS(ABEF, CDGH, W, g) do { \
        __m128i wk_ = _mm_add_epi32((W), _mm_load_si128((const __m128i *)(roundConstants + 4 * (g)))); \
        CDGH = _mm_sha256rnds2_epu32(CDGH, ABEF, wk_); \
        ABEF = _mm_sha256rnds2_epu32(ABEF, CDGH, _mm_shuffle_epi32(wk_, 0x0E)); \
    } while (0)

// The message schedule: W0 (words t-16..t-13) becomes words t..t+3 from W1 (t-12..), W2 (t-8..), W3 (t-4..):
// W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16].
#define SCHEDULE(W0, W1, W2, W3) \
    W0 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(W0, W1), _mm_alignr_epi8(W3, W2, 4)), W3)

// Compresses `blocks` 64-byte blocks of `pa` into state `ha` and as many of `pb` into `hb`, the two interleaved.
SHA_TARGET static void compressPairs(uint32_t *ha, const uint8_t *pa, uint32_t *hb, const uint8_t *pb, size_t blocks) {
    const __m128i byteSwap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a1, a2, b1, b2;
    loadState(ha, &a1, &a2);
    loadState(hb, &b1, &b2);
    while (blocks--) {
        const __m128i sa1 = a1, sa2 = a2, sb1 = b1, sb2 = b2;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 0)), byteSwap);
        __m128i x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 0)), byteSwap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 16)), byteSwap);
        __m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 16)), byteSwap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 32)), byteSwap);
        __m128i x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 32)), byteSwap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 48)), byteSwap);
        __m128i x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 48)), byteSwap);
        FOUR_ROUNDS(a1, a2, w0, 0); FOUR_ROUNDS(b1, b2, x0, 0);
        FOUR_ROUNDS(a1, a2, w1, 1); FOUR_ROUNDS(b1, b2, x1, 1);
        FOUR_ROUNDS(a1, a2, w2, 2); FOUR_ROUNDS(b1, b2, x2, 2);
        FOUR_ROUNDS(a1, a2, w3, 3); FOUR_ROUNDS(b1, b2, x3, 3);
        for (int g = 4; g < 16; g += 4) {
            SCHEDULE(w0, w1, w2, w3); SCHEDULE(x0, x1, x2, x3);
            FOUR_ROUNDS(a1, a2, w0, g); FOUR_ROUNDS(b1, b2, x0, g);
            SCHEDULE(w1, w2, w3, w0); SCHEDULE(x1, x2, x3, x0);
            FOUR_ROUNDS(a1, a2, w1, g + 1); FOUR_ROUNDS(b1, b2, x1, g + 1);
            SCHEDULE(w2, w3, w0, w1); SCHEDULE(x2, x3, x0, x1);
            FOUR_ROUNDS(a1, a2, w2, g + 2); FOUR_ROUNDS(b1, b2, x2, g + 2);
            SCHEDULE(w3, w0, w1, w2); SCHEDULE(x3, x0, x1, x2);
            FOUR_ROUNDS(a1, a2, w3, g + 3); FOUR_ROUNDS(b1, b2, x3, g + 3);
        }
        a1 = _mm_add_epi32(a1, sa1); a2 = _mm_add_epi32(a2, sa2);
        b1 = _mm_add_epi32(b1, sb1); b2 = _mm_add_epi32(b2, sb2);
        pa += 64;
        pb += 64;
    }
    storeState(ha, a1, a2);
    storeState(hb, b1, b2);
}
#endif

static int pairingCapable(void) {
#if defined(__x86_64__)
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = cpuHasShaExtensions();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

int svsha_pairing_available(void) { return pairingCapable() && !atomic_load(&pairingOff); }

void svsha_set_pairing(int on) { atomic_store(&pairingOff, on ? 0 : 1); }

uint64_t svsha_paired_blocks(void) { return atomic_load(&pairedBlocks); }

svsha *svsha_new(void) {
    svsha *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    if (SHA256_Init(&s->ctx) != 1) {
        free(s);
        return NULL;
    }
    return s;
}

void svsha_free(svsha *s) {
    if (s == NULL) return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

// Records the outcome of an OpenSSL call: once failed, the stream stays failed.
static int outcome(svsha *s, int ok) {
    if (!ok) s->failed = 1;
    return ok && !s->failed;
}

int svsha_settle(svsha *s) {
    if (s->lentLength == 0) return !s->failed;
    const uint8_t *p = s->lent;
    size_t n = s->lentLength;
    s->lent = NULL;
    s->lentLength = 0;
    return outcome(s, SHA256_Update(&s->ctx, p, n) == 1);
}

int svsha_update(svsha *s, const void *p, size_t n) {
    if (!svsha_settle(s)) return 0;
    return outcome(s, n == 0 || SHA256_Update(&s->ctx, p, n) == 1);
}

int svsha_lend(svsha *s, const void *p, size_t n) {
    if (!svsha_settle(s)) return 0;
    s->lent = p;
    s->lentLength = n;
    return 1;
}

#if defined(__x86_64__)
// Adds `bytes` to the message length OpenSSL keeps in bits (Nh:Nl), as SHA256_Update would.
static void addLength(SHA256_CTX *c, uint64_t bytes) {
    uint64_t bits = (((uint64_t)c->Nh << 32) | c->Nl) + (bytes << 3);
    c->Nl = (SHA_LONG)bits;
    c->Nh = (SHA_LONG)(bits >> 32);
}

// Feeds up to the rest of a started block from (*p, *n) into c through OpenSSL, so that c->num becomes 0.
static int completeBlock(SHA256_CTX *c, const uint8_t **p, size_t *n) {
    if (c->num == 0) return 1;
    size_t k = SHA256_CBLOCK - c->num;
    if (k > *n) k = *n;
    if (SHA256_Update(c, *p, k) != 1) return 0;
    *p += k;
    *n -= k;
    return 1;
}
#endif

int svsha_update_paired(svsha *s, const void *bytes, size_t n, svsha *lender) {
    if (!svsha_settle(s)) return 0;
    const uint8_t *p = bytes;
#if defined(__x86_64__)
    if (lender != NULL && lender != s && lender->lentLength > 0 && svsha_pairing_available()) {
        if (!outcome(s, completeBlock(&s->ctx, &p, &n))) return 0;
        if (!outcome(lender, completeBlock(&lender->ctx, &lender->lent, &lender->lentLength))) return 0;
        size_t blocks = n / SHA256_CBLOCK;
        size_t lentBlocks = lender->lentLength / SHA256_CBLOCK;
        if (lentBlocks < blocks) blocks = lentBlocks;
        if (blocks > 0 && s->ctx.num == 0 && lender->ctx.num == 0) {
            compressPairs(s->ctx.h, p, lender->ctx.h, lender->lent, blocks);
            size_t done = blocks * SHA256_CBLOCK;
            addLength(&s->ctx, done);
            addLength(&lender->ctx, done);
            p += done;
            n -= done;
            lender->lent += done;
            lender->lentLength -= done;
            if (lender->lentLength == 0) lender->lent = NULL;
            atomic_fetch_add_explicit(&pairedBlocks, blocks, memory_order_relaxed);
        }
    }
#else
    (void)lender;
#endif
    return outcome(s, n == 0 || SHA256_Update(&s->ctx, p, n) == 1);
}

int svsha_final(svsha *s, uint8_t out[32]) {
    int ok = svsha_settle(s);
    ok = SHA256_Final(out, &s->ctx) == 1 && ok;
    if (!ok) OPENSSL_cleanse(out, 32);
    OPENSSL_cleanse(&s->ctx, sizeof s->ctx);
    s->failed = 0;
    return SHA256_Init(&s->ctx) == 1 && ok;
}
