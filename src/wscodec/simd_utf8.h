/* Vectorised UTF-8 validation: the lookup-table method of Keiser and Lemire
 * ("Validating UTF-8 in less than one instruction per byte", 2021), written
 * from the paper for this codec.
 *
 * Every byte is checked together with the 1, 2 and 3 bytes before it. Most
 * errors show in the pair (previous byte, this byte): three 16-entry tables,
 * indexed by the previous byte's high and low nibbles and this byte's high
 * nibble, each give a set of error kinds that pair may be; AND-ing the three
 * keeps only the kinds all three agree on. The one kind that is sometimes
 * fine, two continuation bytes in a row, is fine exactly when the byte two or
 * three back is a 3- or 4-byte lead, and XOR-ing with that cancels it.
 * Blocks that are all ASCII skip the tables (but still catch a sequence the
 * block before left unfinished).
 *
 * ws_utf8_complete_prefix(s, n) returns -1 when s[0:n) cannot be the start of
 * valid UTF-8; otherwise e, with s[0:e) valid, complete UTF-8 and s[e:n) the
 * 0-3 bytes of an unfinished last character, which the caller's DFA checks
 * (so a message split inside a character is still validated exactly, and a
 * bad byte is still rejected as soon as it arrives). The last partial block
 * is copied into a zeroed block-sized buffer (AVX-512: a masked load), so
 * nothing is read past s + n.
 *
 * Kernels: AVX2 and AVX-512BW on x86_64, NEON on aarch64 (gcc/clang);
 * elsewhere ws_utf8_impl stays NULL and the caller's DFA does all the work.
 */
#ifndef WSCODEC_SIMD_UTF8_H
#define WSCODEC_SIMD_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"

/* Where the trailing unfinished character of s[0:n) starts (n if none): a
 * lead byte in the last 3 positions that needs more bytes than follow it. */
static inline size_t ws_utf8_complete_end(const uint8_t *s, size_t n)
{
    if (n >= 1 && s[n - 1] >= 0xC0)
        return n - 1;
    if (n >= 2 && s[n - 2] >= 0xE0)
        return n - 2;
    if (n >= 3 && s[n - 3] >= 0xF0)
        return n - 3;
    return n;
}

/* Error kinds, one bit each (see the paper's table 7). */
#define WS_U8_TOO_SHORT (1 << 0)  /* lead byte then a non-continuation */
#define WS_U8_TOO_LONG (1 << 1)   /* ASCII then a continuation */
#define WS_U8_OVERLONG_3 (1 << 2) /* E0 80..9F */
#define WS_U8_TOO_LARGE (1 << 3)  /* F4 90..BF, F5..FF 90..BF */
#define WS_U8_SURROGATE (1 << 4)  /* ED A0..BF */
#define WS_U8_OVERLONG_2 (1 << 5) /* C0/C1 then a continuation */
#define WS_U8_TOO_LARGE_1000 (1 << 6) /* F5..FF 80..8F */
#define WS_U8_OVERLONG_4 (1 << 6) /* F0 80..8F (shares the bit: the low nibbles differ) */
#define WS_U8_TWO_CONTS (1 << 7)  /* two continuation bytes: fine inside 3/4-byte sequences */
#define WS_U8_CARRY (WS_U8_TOO_SHORT | WS_U8_TOO_LONG | WS_U8_TWO_CONTS)

/* Indexed by the previous byte's high nibble. */
#define WS_U8_TABLE1                                                                           \
    WS_U8_TOO_LONG, WS_U8_TOO_LONG, WS_U8_TOO_LONG, WS_U8_TOO_LONG, WS_U8_TOO_LONG,            \
        WS_U8_TOO_LONG, WS_U8_TOO_LONG, WS_U8_TOO_LONG, WS_U8_TWO_CONTS, WS_U8_TWO_CONTS,      \
        WS_U8_TWO_CONTS, WS_U8_TWO_CONTS, WS_U8_TOO_SHORT | WS_U8_OVERLONG_2, WS_U8_TOO_SHORT, \
        WS_U8_TOO_SHORT | WS_U8_OVERLONG_3 | WS_U8_SURROGATE,                                  \
        WS_U8_TOO_SHORT | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000 | WS_U8_OVERLONG_4

/* Indexed by the previous byte's low nibble. */
#define WS_U8_TABLE2                                                                           \
    WS_U8_CARRY | WS_U8_OVERLONG_3 | WS_U8_OVERLONG_2 | WS_U8_OVERLONG_4,                      \
        WS_U8_CARRY | WS_U8_OVERLONG_2, WS_U8_CARRY, WS_U8_CARRY,                              \
        WS_U8_CARRY | WS_U8_TOO_LARGE, WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,   \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000 | WS_U8_SURROGATE,                \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000,                                  \
        WS_U8_CARRY | WS_U8_TOO_LARGE | WS_U8_TOO_LARGE_1000

/* Indexed by this byte's high nibble. */
#define WS_U8_TABLE3                                                                           \
    WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT,       \
        WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT,                                     \
        WS_U8_TOO_LONG | WS_U8_OVERLONG_2 | WS_U8_TWO_CONTS | WS_U8_OVERLONG_3 |               \
            WS_U8_TOO_LARGE_1000 | WS_U8_OVERLONG_4,                                           \
        WS_U8_TOO_LONG | WS_U8_OVERLONG_2 | WS_U8_TWO_CONTS | WS_U8_OVERLONG_3 | WS_U8_TOO_LARGE, \
        WS_U8_TOO_LONG | WS_U8_OVERLONG_2 | WS_U8_TWO_CONTS | WS_U8_SURROGATE | WS_U8_TOO_LARGE,  \
        WS_U8_TOO_LONG | WS_U8_OVERLONG_2 | WS_U8_TWO_CONTS | WS_U8_SURROGATE | WS_U8_TOO_LARGE,  \
        WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT, WS_U8_TOO_SHORT

/* A block's last three bytes must be below these for no sequence to be left
 * open: the last byte no lead at all, the one before no 3/4-byte lead, the
 * one before that no 4-byte lead. Saturating subtraction from the block gives
 * nonzero exactly where a sequence is unfinished. */
#define WS_U8_INCOMPLETE_16(last) \
    (char)255, (char)255, (char)255, (char)255, (char)255, (char)255, (char)255, (char)255,  \
        (char)255, (char)255, (char)255, (char)255, (char)255, (char)(last ? 0xEF : 255),    \
        (char)(last ? 0xDF : 255), (char)(last ? 0xBF : 255)

#if defined(WS_X86_SIMD)

/* ---- AVX2: 32-byte blocks, four at a time ------------------------------ */

WS_TARGET("avx2")
static inline __m256i ws_u8_prev_avx2(__m256i in, __m256i prev_in, int n_shift)
{
    /* [prev's high lane, in's low lane]: the bytes just before each lane. */
    __m256i before = _mm256_permute2x128_si256(prev_in, in, 0x21);
    switch (n_shift) {
    case 1: return _mm256_alignr_epi8(in, before, 15);
    case 2: return _mm256_alignr_epi8(in, before, 14);
    default: return _mm256_alignr_epi8(in, before, 13);
    }
}

WS_TARGET("avx2")
static inline __m256i ws_u8_check_avx2(__m256i in, __m256i prev_in)
{
    const __m256i t1 = _mm256_setr_epi8(WS_U8_TABLE1, WS_U8_TABLE1);
    const __m256i t2 = _mm256_setr_epi8(WS_U8_TABLE2, WS_U8_TABLE2);
    const __m256i t3 = _mm256_setr_epi8(WS_U8_TABLE3, WS_U8_TABLE3);
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256i prev1 = ws_u8_prev_avx2(in, prev_in, 1);
    __m256i prev2 = ws_u8_prev_avx2(in, prev_in, 2);
    __m256i prev3 = ws_u8_prev_avx2(in, prev_in, 3);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(
            _mm256_shuffle_epi8(t1, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), low)),
            _mm256_shuffle_epi8(t2, _mm256_and_si256(prev1, low))),
        _mm256_shuffle_epi8(t3, _mm256_and_si256(_mm256_srli_epi16(in, 4), low)));
    /* 0x80 where the byte 2 back is >= E0 or the byte 3 back is >= F0. */
    __m256i third = _mm256_subs_epu8(prev2, _mm256_set1_epi8((char)(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must23, sc);
}

WS_TARGET("avx2")
static ptrdiff_t ws_utf8_avx2(const uint8_t *s, size_t n)
{
    const __m256i incomplete_max =
        _mm256_setr_epi8(WS_U8_INCOMPLETE_16(0), WS_U8_INCOMPLETE_16(1));
    size_t e = ws_utf8_complete_end(s, n), i = 0;
    __m256i error = _mm256_setzero_si256(), prev_in = _mm256_setzero_si256();
    __m256i prev_incomplete = _mm256_setzero_si256();
    uint8_t last[32];
    /* 128 bytes a step: one test skips four ASCII blocks, and text that
     * mixes ASCII with other characters takes the (branch-free) checks of
     * all four instead of a guess per block that is often wrong. */
    while (i + 128 <= e) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(s + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(s + i + 96));
        if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d))) == 0) {
            error = _mm256_or_si256(error, prev_incomplete);
            prev_incomplete = _mm256_setzero_si256();
        } else {
            __m256i ab = _mm256_or_si256(ws_u8_check_avx2(a, prev_in), ws_u8_check_avx2(b, a));
            __m256i cd = _mm256_or_si256(ws_u8_check_avx2(c, b), ws_u8_check_avx2(d, c));
            error = _mm256_or_si256(error, _mm256_or_si256(ab, cd));
            prev_incomplete = _mm256_subs_epu8(d, incomplete_max);
        }
        prev_in = d;
        i += 128;
        /* Checking the accumulated error now and then lets a bad byte early
         * in a large input stop the scan; every 1 KiB costs nothing. */
        if ((i & 1023) == 0 && !_mm256_testz_si256(error, error))
            return -1;
    }
    for (;;) {
        __m256i in;
        int final = 0;
        if (i + 32 <= e) {
            in = _mm256_loadu_si256((const __m256i *)(s + i));
        } else {
            /* The last, partial block (maybe empty): zero padding is ASCII,
             * so a sequence left open before it shows as an error. */
            memset(last, 0, sizeof(last));
            memcpy(last, s + i, e - i);
            in = _mm256_loadu_si256((const __m256i *)last);
            final = 1;
        }
        if (_mm256_movemask_epi8(in) == 0) {
            error = _mm256_or_si256(error, prev_incomplete);
            prev_incomplete = _mm256_setzero_si256();
        } else {
            error = _mm256_or_si256(error, ws_u8_check_avx2(in, prev_in));
            prev_incomplete = _mm256_subs_epu8(in, incomplete_max);
        }
        prev_in = in;
        if (final)
            break;
        i += 32;
    }
    return _mm256_testz_si256(error, error) ? (ptrdiff_t)e : -1;
}

/* ---- AVX-512BW: 64-byte blocks ----------------------------------------- */

WS_TARGET("avx512f,avx512bw")
static inline __m512i ws_u8_check_avx512(__m512i in, __m512i prev_in)
{
    const __m512i t1 = _mm512_broadcast_i32x4(_mm_setr_epi8(WS_U8_TABLE1));
    const __m512i t2 = _mm512_broadcast_i32x4(_mm_setr_epi8(WS_U8_TABLE2));
    const __m512i t3 = _mm512_broadcast_i32x4(_mm_setr_epi8(WS_U8_TABLE3));
    const __m512i low = _mm512_set1_epi8(0x0F);
    /* Per 128-bit lane, the 16 bytes just before it: [prev lane 3, in lanes 0-2]. */
    __m512i before = _mm512_alignr_epi32(in, prev_in, 12);
    __m512i prev1 = _mm512_alignr_epi8(in, before, 15);
    __m512i prev2 = _mm512_alignr_epi8(in, before, 14);
    __m512i prev3 = _mm512_alignr_epi8(in, before, 13);
    __m512i sc = _mm512_and_si512(
        _mm512_and_si512(
            _mm512_shuffle_epi8(t1, _mm512_and_si512(_mm512_srli_epi16(prev1, 4), low)),
            _mm512_shuffle_epi8(t2, _mm512_and_si512(prev1, low))),
        _mm512_shuffle_epi8(t3, _mm512_and_si512(_mm512_srli_epi16(in, 4), low)));
    __m512i third = _mm512_subs_epu8(prev2, _mm512_set1_epi8((char)(0xE0 - 0x80)));
    __m512i fourth = _mm512_subs_epu8(prev3, _mm512_set1_epi8((char)(0xF0 - 0x80)));
    __m512i must23 = _mm512_and_si512(_mm512_or_si512(third, fourth), _mm512_set1_epi8((char)0x80));
    return _mm512_xor_si512(must23, sc);
}

WS_TARGET("avx512f,avx512bw")
static ptrdiff_t ws_utf8_avx512(const uint8_t *s, size_t n)
{
    const __m512i incomplete_max = _mm512_inserti32x4(
        _mm512_set1_epi8((char)255), _mm_setr_epi8(WS_U8_INCOMPLETE_16(1)), 3);
    size_t e = ws_utf8_complete_end(s, n), i = 0;
    __m512i error = _mm512_setzero_si512(), prev_in = _mm512_setzero_si512();
    __m512i prev_incomplete = _mm512_setzero_si512();
    for (;;) {
        __m512i in;
        int final = 0;
        if (i + 64 <= e) {
            in = _mm512_loadu_si512((const void *)(s + i));
        } else {
            /* The last, partial block: a masked load reads only s[i:e) and
             * zero-fills the rest (ASCII, so an open sequence is an error). */
            in = _mm512_maskz_loadu_epi8(
                e - i == 0 ? 0 : (~(__mmask64)0) >> (64 - (e - i)), s + i);
            final = 1;
        }
        if (_mm512_movepi8_mask(in) == 0) {
            error = _mm512_or_si512(error, prev_incomplete);
            prev_incomplete = _mm512_setzero_si512();
        } else {
            error = _mm512_or_si512(error, ws_u8_check_avx512(in, prev_in));
            prev_incomplete = _mm512_subs_epu8(in, incomplete_max);
        }
        prev_in = in;
        if (final)
            break;
        i += 64;
        if ((i & 1023) == 0 && _mm512_test_epi8_mask(error, error) != 0)
            return -1;
    }
    return _mm512_test_epi8_mask(error, error) == 0 ? (ptrdiff_t)e : -1;
}

#endif /* WS_X86_SIMD */

#if defined(WS_NEON)

/* ---- NEON: 16-byte blocks, four at a time ------------------------------ *
 * Verified under qemu-aarch64 only (tests/native/kernel_check.c), not yet
 * timed on ARM hardware. */

static inline uint8x16_t ws_u8_check_neon(uint8x16_t in, uint8x16_t prev_in)
{
    /* 16 entries each: one vqtbl1q_u8 lookup per table. */
    static const uint8_t t1[16] = {WS_U8_TABLE1}, t2[16] = {WS_U8_TABLE2};
    static const uint8_t t3[16] = {WS_U8_TABLE3};
    /* The bytes 1, 2 and 3 back: the end of the block before, then this one. */
    uint8x16_t prev1 = vextq_u8(prev_in, in, 15);
    uint8x16_t prev2 = vextq_u8(prev_in, in, 14);
    uint8x16_t prev3 = vextq_u8(prev_in, in, 13);
    uint8x16_t sc = vandq_u8(
        vandq_u8(vqtbl1q_u8(vld1q_u8(t1), vshrq_n_u8(prev1, 4)),
                 vqtbl1q_u8(vld1q_u8(t2), vandq_u8(prev1, vdupq_n_u8(0x0F)))),
        vqtbl1q_u8(vld1q_u8(t3), vshrq_n_u8(in, 4)));
    /* 0x80 where the byte 2 back is >= E0 or the byte 3 back is >= F0. */
    uint8x16_t third = vqsubq_u8(prev2, vdupq_n_u8(0xE0 - 0x80));
    uint8x16_t fourth = vqsubq_u8(prev3, vdupq_n_u8(0xF0 - 0x80));
    uint8x16_t must23 = vandq_u8(vorrq_u8(third, fourth), vdupq_n_u8(0x80));
    return veorq_u8(must23, sc);
}

static ptrdiff_t ws_utf8_neon(const uint8_t *s, size_t n)
{
    static const uint8_t incomplete_bytes[16] = {WS_U8_INCOMPLETE_16(1)};
    const uint8x16_t incomplete_max = vld1q_u8(incomplete_bytes);
    size_t e = ws_utf8_complete_end(s, n), i = 0;
    uint8x16_t error = vdupq_n_u8(0), prev_in = vdupq_n_u8(0);
    uint8x16_t prev_incomplete = vdupq_n_u8(0);
    uint8_t last[16];
    /* 64 bytes a step, as the AVX2 kernel does 128: one ASCII test for
     * four blocks, else the branch-free checks of all four. */
    while (i + 64 <= e) {
        uint8x16_t a = vld1q_u8(s + i), b = vld1q_u8(s + i + 16);
        uint8x16_t c = vld1q_u8(s + i + 32), d = vld1q_u8(s + i + 48);
        if (vmaxvq_u8(vorrq_u8(vorrq_u8(a, b), vorrq_u8(c, d))) < 0x80) {
            error = vorrq_u8(error, prev_incomplete);
            prev_incomplete = vdupq_n_u8(0);
        } else {
            uint8x16_t ab = vorrq_u8(ws_u8_check_neon(a, prev_in), ws_u8_check_neon(b, a));
            uint8x16_t cd = vorrq_u8(ws_u8_check_neon(c, b), ws_u8_check_neon(d, c));
            error = vorrq_u8(error, vorrq_u8(ab, cd));
            prev_incomplete = vqsubq_u8(d, incomplete_max);
        }
        prev_in = d;
        i += 64;
        /* A bad byte early in a large input stops the scan within 1 KiB. */
        if ((i & 1023) == 0 && vmaxvq_u8(error) != 0)
            return -1;
    }
    for (;;) {
        uint8x16_t in;
        int final = 0;
        if (i + 16 <= e) {
            in = vld1q_u8(s + i);
        } else {
            /* The last, partial block (maybe empty), zero padded: ASCII, so
             * a sequence left open before it shows as an error. */
            memset(last, 0, sizeof(last));
            memcpy(last, s + i, e - i);
            in = vld1q_u8(last);
            final = 1;
        }
        if (vmaxvq_u8(in) < 0x80) {
            error = vorrq_u8(error, prev_incomplete);
            prev_incomplete = vdupq_n_u8(0);
        } else {
            error = vorrq_u8(error, ws_u8_check_neon(in, prev_in));
            prev_incomplete = vqsubq_u8(in, incomplete_max);
        }
        prev_in = in;
        if (final)
            break;
        i += 16;
    }
    return vmaxvq_u8(error) == 0 ? (ptrdiff_t)e : -1;
}

#endif /* WS_NEON */

typedef ptrdiff_t (*ws_utf8_fn)(const uint8_t *, size_t);

/* NULL: no vector kernel here (the caller's DFA does all the work). */
static ws_utf8_fn ws_utf8_impl = NULL;

static const char *ws_utf8_select(int level)
{
#if defined(WS_X86_SIMD)
    if (level == WS_LEVEL_AVX512) {
        ws_utf8_impl = ws_utf8_avx512;
        return "avx512";
    }
    if (level == WS_LEVEL_AVX2) {
        ws_utf8_impl = ws_utf8_avx2;
        return "avx2";
    }
#elif defined(WS_NEON)
    if (level == WS_LEVEL_NEON) {
        ws_utf8_impl = ws_utf8_neon;
        return "neon";
    }
#endif
    (void)level;
    ws_utf8_impl = NULL;
    return "portable";
}

#endif
