/* WebSocket masking: dst[i] = src[i] ^ key[(phase + i) % 4]; dst may be src.
 *
 * One pass over the data, as wide as the CPU allows. Every path handles the
 * tail without reading past src + n: the vector loops stop at the last whole
 * vector, AVX-512 finishes with a masked load/store (masked-off bytes are not
 * accessed), the others with 8-byte words and then single bytes. Loads and
 * stores are unaligned (memcpy or loadu), so any start address is fine.
 *
 * Because every vector width is a multiple of 4, a key rotated by `phase` and
 * repeated across the register stays in step with the data at every offset.
 */
#ifndef WSCODEC_SIMD_MASK_H
#define WSCODEC_SIMD_MASK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"

/* The key rotated so that byte 0 of the result goes with data byte 0. */
static inline uint32_t ws_rotated_key(const uint8_t *key, size_t phase)
{
    uint8_t r[4];
    uint32_t k;
    r[0] = key[phase & 3];
    r[1] = key[(phase + 1) & 3];
    r[2] = key[(phase + 2) & 3];
    r[3] = key[(phase + 3) & 3];
    memcpy(&k, r, 4);
    return k;
}

/* Bytes from `i` to `n` one 8-byte word and then one byte at a time. */
static inline void ws_mask_tail(uint8_t *dst, const uint8_t *src, size_t i, size_t n, uint32_t k)
{
    uint64_t k64 = ((uint64_t)k << 32) | k, w;
    uint8_t kb[4];
    memcpy(kb, &k, 4);
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ kb[i & 3];
}

/* Portable: four 64-bit words per iteration (compilers may vectorise it). */
static void ws_mask_portable(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                             size_t phase)
{
    uint32_t k = ws_rotated_key(key, phase);
    uint64_t k64 = ((uint64_t)k << 32) | k, w0, w1, w2, w3;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(&w0, src + i, 8);
        memcpy(&w1, src + i + 8, 8);
        memcpy(&w2, src + i + 16, 8);
        memcpy(&w3, src + i + 24, 8);
        w0 ^= k64;
        w1 ^= k64;
        w2 ^= k64;
        w3 ^= k64;
        memcpy(dst + i, &w0, 8);
        memcpy(dst + i + 8, &w1, 8);
        memcpy(dst + i + 16, &w2, 8);
        memcpy(dst + i + 24, &w3, 8);
    }
    ws_mask_tail(dst, src, i, n, k);
}

/* From this size on, copying (not in-place) AVX2 masking writes with
 * non-temporal stores, which bypass the caches: source and result together
 * no longer fit in the last-level cache, and ordinary stores would first
 * read each destination line from memory and then evict the source lines
 * still to be read. Set by ws_mask_select from the L3 size where the CPU
 * reports it (3/8 of it: source + result = 3/4); measured on Zen 3
 * with 32 MiB of L3, 16 MiB copies went 12.2-13.0 -> 14.6-19.2 GB/s and
 * 24 MiB ones 8.0 -> 12.4, while at 8 MiB ordinary stores stay ahead
 * (29 against 20). Outside the x86 block because ws_mask_select and the
 * extension (MASK_STREAMING_FROM) use it on every architecture. */
#define WS_MASK_STREAMING_DEFAULT ((size_t)12 << 20)
static size_t ws_mask_streaming_from = WS_MASK_STREAMING_DEFAULT;

static size_t ws_streaming_threshold(void)
{
    size_t l3 = ws_l3_cache_size();
    return l3 >= ((size_t)4 << 20) ? l3 / 8 * 3 : WS_MASK_STREAMING_DEFAULT;
}

#if defined(WS_X86_SIMD)

static void ws_mask_sse2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                         size_t phase)
{
    uint32_t k = ws_rotated_key(key, phase);
    __m128i kv = _mm_set1_epi32((int)k);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, kv));
        _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, kv));
        _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, kv));
        _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, kv));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, kv));
    }
    ws_mask_tail(dst, src, i, n, k);
}

/* From this size on, the AVX2 path first masks the 0-31 bytes that bring
 * dst to a 32-byte boundary: a store that straddles two cache lines costs
 * two (in place, so does the load), which measured 1.35x -> 1.75x memcpy
 * for in-place masking of 1 MiB on Zen 3. */
#define WS_MASK_ALIGN_FROM 256

WS_TARGET("avx2")
static void ws_mask_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                         size_t phase)
{
    size_t i = 0, head = 0;
    uint32_t k;
    __m256i kv;
    if (n >= WS_MASK_ALIGN_FROM) {
        head = (32 - ((uintptr_t)dst & 31)) & 31;
        ws_mask_tail(dst, src, 0, head, ws_rotated_key(key, phase));
        dst += head;
        src += head;
        n -= head;
    }
    k = ws_rotated_key(key, phase + head);
    kv = _mm256_set1_epi32((int)k);
    if (dst != src && n >= ws_mask_streaming_from) {
        /* dst is 32-byte aligned here (n >= WS_MASK_ALIGN_FROM). */
        for (; i + 128 <= n; i += 128) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
            __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
            __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
            _mm256_stream_si256((__m256i *)(dst + i), _mm256_xor_si256(a, kv));
            _mm256_stream_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, kv));
            _mm256_stream_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, kv));
            _mm256_stream_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, kv));
        }
        /* Non-temporal stores are weakly ordered: fence before anyone else
         * (another thread, once the GIL is back) may read the result. */
        _mm_sfence();
    }
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, kv));
        _mm256_storeu_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, kv));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, kv));
    }
    if (i + 16 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, _mm256_castsi256_si128(kv)));
        i += 16;
    }
    ws_mask_tail(dst, src, i, n, k);
}

/* From this size on, copying (not in-place) AVX-512 hands over to SSE2. */
#define WS_MASK_STREAMING ((size_t)4 << 20)

WS_TARGET("avx512f,avx512bw")
static void ws_mask_avx512(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                           size_t phase)
{
    uint32_t k = ws_rotated_key(key, phase);
    __m512i kv;
    size_t i = 0;
    if (n >= WS_MASK_STREAMING && dst != src) {
        /* Far beyond the caches the loop waits on memory, and 16-byte
         * accesses measured faster there than 64-byte ones (0.82 against
         * 0.90 ms for 16 MiB on Zen 4). */
        ws_mask_sse2(dst, src, n, key, phase);
        return;
    }
    if (n >= 1024) {
        /* Large inputs: a masked head first so every store below is 64-byte
         * aligned (a store split across two cache lines costs twice). */
        size_t head = (size_t)(-(uintptr_t)dst) & 63;
        if (head) {
            __mmask64 m = (((__mmask64)1) << head) - 1;
            kv = _mm512_set1_epi32((int)k);
            _mm512_mask_storeu_epi8(dst, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src), kv));
            i = head;
            k = ws_rotated_key(key, phase + head);
        }
    }
    kv = _mm512_set1_epi32((int)k);
    for (; i + 256 <= n; i += 256) {
        __m512i a = _mm512_loadu_si512((const void *)(src + i));
        __m512i b = _mm512_loadu_si512((const void *)(src + i + 64));
        __m512i c = _mm512_loadu_si512((const void *)(src + i + 128));
        __m512i d = _mm512_loadu_si512((const void *)(src + i + 192));
        _mm512_storeu_si512((void *)(dst + i), _mm512_xor_si512(a, kv));
        _mm512_storeu_si512((void *)(dst + i + 64), _mm512_xor_si512(b, kv));
        _mm512_storeu_si512((void *)(dst + i + 128), _mm512_xor_si512(c, kv));
        _mm512_storeu_si512((void *)(dst + i + 192), _mm512_xor_si512(d, kv));
    }
    for (; i + 64 <= n; i += 64) {
        __m512i a = _mm512_loadu_si512((const void *)(src + i));
        _mm512_storeu_si512((void *)(dst + i), _mm512_xor_si512(a, kv));
    }
    if (i < n) {
        /* Fewer than 64 bytes left: bytes outside the mask are not touched. */
        __mmask64 m = (((__mmask64)1) << (n - i)) - 1;
        __m512i a = _mm512_maskz_loadu_epi8(m, src + i);
        _mm512_mask_storeu_epi8(dst + i, m, _mm512_xor_si512(a, kv));
    }
}

#endif /* WS_X86_SIMD */

#if defined(WS_NEON)

static void ws_mask_neon(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                         size_t phase)
{
    uint32_t k = ws_rotated_key(key, phase);
    uint8x16_t kv = vreinterpretq_u8_u32(vdupq_n_u32(k));
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint8x16_t a = vld1q_u8(src + i), b = vld1q_u8(src + i + 16);
        uint8x16_t c = vld1q_u8(src + i + 32), d = vld1q_u8(src + i + 48);
        vst1q_u8(dst + i, veorq_u8(a, kv));
        vst1q_u8(dst + i + 16, veorq_u8(b, kv));
        vst1q_u8(dst + i + 32, veorq_u8(c, kv));
        vst1q_u8(dst + i + 48, veorq_u8(d, kv));
    }
    for (; i + 16 <= n; i += 16)
        vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), kv));
    ws_mask_tail(dst, src, i, n, k);
}

#endif /* WS_NEON */

typedef void (*ws_mask_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t);

static ws_mask_fn ws_mask_impl = ws_mask_portable;

/* Pick the kernel for `level` (from ws_detect_level); the name of the one chosen. */
static const char *ws_mask_select(int level)
{
    ws_mask_streaming_from = ws_streaming_threshold();
#if defined(WS_X86_SIMD)
    if (level >= WS_LEVEL_AVX512 && level != WS_LEVEL_NEON) {
        ws_mask_impl = ws_mask_avx512;
        return "avx512";
    }
    if (level == WS_LEVEL_AVX2) {
        ws_mask_impl = ws_mask_avx2;
        return "avx2";
    }
    if (level == WS_LEVEL_SSE2) {
        ws_mask_impl = ws_mask_sse2;
        return "sse2";
    }
#elif defined(WS_NEON)
    if (level == WS_LEVEL_NEON) {
        ws_mask_impl = ws_mask_neon;
        return "neon";
    }
#endif
    (void)level;
    ws_mask_impl = ws_mask_portable;
    return "portable";
}

static inline void ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key,
                           size_t phase)
{
    ws_mask_impl(dst, src, n, key, phase);
}

#endif
