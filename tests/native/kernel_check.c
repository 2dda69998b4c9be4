/* Checks the masking kernels of simd_mask.h and the UTF-8 kernels of
 * simd_utf8.h, at every level this CPU has, against plain byte-at-a-time
 * references; and ws_utf8_complete_end.
 *
 * Written so the aarch64 kernels, which the x86_64 machines that run the test
 * suite never execute, can be checked under qemu-aarch64
 * (tests/test_native_kernels.py cross-compiles it); natively it checks the
 * x86_64 levels, which also shows the harness itself is right.
 *
 *   cc -std=c99 -O2 -I src/wscodec tests/native/kernel_check.c && ./a.out [seed]
 *
 * Prints the levels that have a UTF-8 kernel, then one summary line; exits 1
 * if any case failed.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, unsetenv */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "simd_mask.h"
#include "simd_utf8.h"

/* Bytes checked on each side of the destination: wider than any vector, so
 * a whole stray store past either end lands in them. */
#define GUARD 64
#define FILL 0xA5
#define SMALL_MAX 600 /* every length up to here, with every alignment */

/* A few large lengths: the unrolled loops, and (on x86_64) the AVX2
 * alignment head and the AVX-512 hand-over to SSE2 from 4 MiB on. Kept
 * small on other architectures, where this runs under qemu. */
static const size_t big_sizes[] = {
    4096 + 13, 65536 + 7, ((size_t)1 << 20) + 5,
#if defined(WS_X86_SIMD)
    ((size_t)4 << 20) + 3,
#endif
};
#define NBIG (sizeof(big_sizes) / sizeof(big_sizes[0]))
#define BIG_MAX (big_sizes[NBIG - 1])

static uint8_t *pattern; /* the source bytes of every case */
static uint8_t *expect;  /* the reference result for the current (n, key, phase) */
static uint8_t *sbuf, *dbuf;
static uint8_t *page_end; /* the first byte of a PROT_NONE page */
static const char *level;
static unsigned long cases, failures;
static volatile size_t cur_n, cur_phase; /* the case running, for on_fault */
static const char *volatile cur_op = "mask"; /* or "utf8": cur_phase is then the position */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(void) /* xorshift64: reproducible from the printed seed */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static void ref_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *key, size_t phase)
{
    size_t i;
    for (i = 0; i < n; i++)
        dst[i] = src[i] ^ key[(phase + i) % 4];
}

static uint8_t *map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("kernel_check: mmap");
        exit(2);
    }
    return p;
}

static int all(const uint8_t *p, size_t n, uint8_t byte)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != byte)
            return 0;
    return 1;
}

/* An access past the end of the data reaches the unmapped page: say which
 * case did it rather than just dying (not async-signal-safe, but the
 * process is going down anyway). */
static void on_fault(int sig)
{
    (void)sig;
    fprintf(stderr, "kernel_check: FAIL %s %s: fault (read or write past the end), n=%zu %s=%td\n",
            cur_op, level, (size_t)cur_n, strcmp(cur_op, "mask") == 0 ? "phase" : "pos",
            (ptrdiff_t)cur_phase);
    _exit(1);
}

/* One call of the selected kernel: dst == src masks in place. `after` is 0
 * when dst + n is the unmapped page (a stray write there crashes instead). */
static void check(uint8_t *dst, uint8_t *src, size_t n, const uint8_t *key, size_t phase,
                  int after)
{
    const char *what = NULL;
    memset(dst - GUARD, FILL, GUARD);
    if (after)
        memset(dst + n, FILL, GUARD);
    if (dst == src)
        memcpy(dst, pattern, n);
    else
        memset(dst, FILL, n); /* so a byte the kernel skips shows */
    cur_n = n;
    cur_phase = phase;
    ws_mask(dst, src, n, key, phase);
    cases++;
    if (memcmp(dst, expect, n) != 0)
        what = "wrong result";
    else if (!all(dst - GUARD, GUARD, FILL) || (after && !all(dst + n, GUARD, FILL)))
        what = "wrote outside [dst, dst+n)";
    else if (dst != src && memcmp(src, pattern, n) != 0)
        what = "changed the source";
    if (what != NULL && ++failures <= 20)
        fprintf(stderr,
                "kernel_check: FAIL %s: %s, n=%zu phase=%zu src%%64=%u dst%%64=%u %s%s\n",
                level, what, n, phase, (unsigned)((uintptr_t)src & 63),
                (unsigned)((uintptr_t)dst & 63), dst == src ? "in place" : "copy",
                after ? "" : ", ending at an unmapped page");
}

/* Every placement of one (n, key, phase): sources and destinations at each
 * misalignment (`offsets` of them: 16 for small n, a few for large), and the
 * data ending right before the unmapped page, so an over-read faults. */
static void check_all(size_t n, const uint8_t *key, size_t phase, const size_t *offsets,
                      size_t noff)
{
    uint8_t *at_end = page_end - n;
    size_t s, d;
    ref_mask(expect, pattern, n, key, phase);
    for (s = 0; s < noff; s++) {
        memcpy(sbuf + offsets[s], pattern, n);
        for (d = 0; d < noff; d++)
            check(dbuf + GUARD + offsets[d], sbuf + offsets[s], n, key, phase, 1);
        check(dbuf + GUARD + offsets[s], dbuf + GUARD + offsets[s], n, key, phase, 1);
    }
    memcpy(at_end, pattern, n);
    check(dbuf + GUARD + n % 16, at_end, n, key, phase, 1);
    check(at_end, at_end, n, key, phase, 0);
}

static void check_level(void)
{
    static const size_t every[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const size_t some[4] = {0, 1, 7, 13};
    uint8_t key[4];
    uint32_t k;
    size_t n, phase, b;
    for (n = 0; n <= SMALL_MAX; n++) {
        k = rnd();
        memcpy(key, &k, 4);
        for (phase = 0; phase < 4; phase++)
            check_all(n, key, phase, every, 16);
    }
    for (b = 0; b < NBIG; b++) {
        k = rnd();
        memcpy(key, &k, 4);
        for (phase = 0; phase < 4; phase++)
            check_all(big_sizes[b], key, phase, some, 4);
#if defined(WS_X86_SIMD)
        /* AVX2 copies use non-temporal stores only from ~12 MiB on: lower
         * the threshold (it needs n >= 256) so that loop runs here too.
         * The other kernels ignore it. */
        ws_mask_streaming_from = 4096;
        check_all(big_sizes[b], key, 3, some, 4);
        ws_mask_streaming_from = ws_streaming_threshold();
#endif
    }
}

/* The spec of ws_utf8_complete_end, restated: the last position among the
 * final three whose lead byte needs more bytes than are left from it. */
static size_t ref_complete_end(const uint8_t *s, size_t n)
{
    size_t j, need;
    for (j = n; j > 0 && n - j < 3;) {
        j--;
        need = s[j] >= 0xF0 ? 4 : s[j] >= 0xE0 ? 3 : s[j] >= 0xC0 ? 2 : 1;
        if (need > n - j)
            return j;
    }
    return n;
}

/* Every string of up to 5 bytes over the byte classes that matter (ASCII,
 * continuations, each kind of lead and the bytes just outside each range). */
static void check_utf8_complete_end(void)
{
    static const uint8_t bytes[] = {0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF,
                                    0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    enum { NB = sizeof(bytes), LEN = 5 };
    uint8_t s[LEN];
    size_t n, i, idx, total, got, want;
    for (n = 0; n <= LEN; n++) {
        for (total = 1, i = 0; i < n; i++)
            total *= NB;
        for (idx = 0; idx < total; idx++) {
            size_t rest = idx;
            for (i = 0; i < n; i++, rest /= NB)
                s[i] = bytes[rest % NB];
            got = ws_utf8_complete_end(s, n);
            want = ref_complete_end(s, n);
            cases++;
            if (got != want && ++failures <= 20)
                fprintf(stderr, "kernel_check: FAIL ws_utf8_complete_end: n=%zu -> %zu, want %zu\n",
                        n, got, want);
        }
    }
}

/* ---- UTF-8 --------------------------------------------------------------- */

#define U8_SMALL_MAX 320 /* every length up to here: valid, every prefix, every byte corrupted */
#define U8_BACKGROUND 300 /* the text each hand-picked sequence is put at every position of */

/* Larger inputs: the first for the early exit every 1 KiB and the last
 * blocks after many steps, checked closely; the others for long runs, more
 * lightly (the reference takes ~5 ms a MiB). The 1 MiB one only on x86_64
 * (elsewhere this runs under qemu). */
static const size_t u8_big_sizes[] = {
    10240 + 3,
    65536 + 7,
#if defined(WS_X86_SIMD)
    ((size_t)1 << 20) + 13,
#endif
};
#define U8_NBIG (sizeof(u8_big_sizes) / sizeof(u8_big_sizes[0]))
#define U8_BIG_MAX (u8_big_sizes[U8_NBIG - 1])

/* What a corrupted byte becomes: continuations at the edges of the ranges
 * the tables split, every kind of lead, the never-valid bytes, ASCII. */
static const uint8_t hostile[] = {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                  0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x00, 0x7F};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* Hand-picked sequences, and whether each is valid UTF-8 on its own (which
 * checks the reference too). */
static const struct {
    const char *bytes;
    int valid;
} snippets[] = {
    {"\xED\xA0\x80", 0},     /* U+D800: surrogate */
    {"\xED\xBF\xBF", 0},     /* U+DFFF: surrogate */
    {"\xED\x9F\xBF", 1},     /* U+D7FF */
    {"\xEE\x80\x80", 1},     /* U+E000 */
    {"\xE0\x80\x80", 0},     /* overlong */
    {"\xE0\x9F\xBF", 0},     /* overlong U+07FF */
    {"\xE0\xA0\x80", 1},     /* U+0800 */
    {"\xF0\x80\x80\x80", 0}, /* overlong */
    {"\xF0\x8F\xBF\xBF", 0}, /* overlong U+FFFF */
    {"\xF0\x90\x80\x80", 1}, /* U+10000 */
    {"\xF4\x8F\xBF\xBF", 1}, /* U+10FFFF */
    {"\xF4\x90\x80\x80", 0}, /* U+110000: too large */
    {"\xF5\x80\x80\x80", 0}, /* never valid */
    {"\xFF", 0},
    {"\xC0\x80", 0},         /* overlong U+0000 */
    {"\xC1\xBF", 0},         /* overlong U+007F */
    {"\xC2\x80", 1},         /* U+0080 */
    {"\xDF\xBF", 1},         /* U+07FF */
    {"\x80", 0},             /* lone continuations */
    {"\xBF", 0},
    {"\xC2", 0},             /* unfinished */
    {"\xE2\x82", 0},
    {"\xF0\x9F\x98", 0},
    {"\xE2\x82\xAC\x80", 0}, /* a continuation too many */
    {"\xF0\x9F\x98\x80", 1},
    {"\xC2\xC2\x80", 0},
    {"\xE2\x28\xA1", 0},
};
#define NSNIPPETS (sizeof(snippets) / sizeof(snippets[0]))

static uint8_t *u8_text;    /* the valid text the current cases start from */
static uint8_t *page_start; /* the first byte after a PROT_NONE page */

/* Strict UTF-8 (RFC 3629), by decoding: no overlong forms, no surrogates
 * (D800-DFFF), nothing above U+10FFFF; C0, C1 and F5-FF never valid. */
static int ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, len, k;
    uint32_t cp, min;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len > n - i)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* One random character of `len` (1-4) bytes at p, often the first or last
 * code point of its length or one next to the surrogates. */
static size_t put_char(uint8_t *p, size_t len)
{
    static const uint32_t lo[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t hi[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    uint32_t r = rnd(), cp = lo[len] + rnd() % (hi[len] - lo[len] + 1);
    if ((r & 3) < 2)
        cp = (r & 3) == 0 ? lo[len] : hi[len];
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = (r & 4) ? 0xD7FF : 0xE000;
    switch (len) {
    case 1:
        p[0] = (uint8_t)cp;
        break;
    case 2:
        p[0] = (uint8_t)(0xC0 | cp >> 6);
        p[1] = (uint8_t)(0x80 | (cp & 0x3F));
        break;
    case 3:
        p[0] = (uint8_t)(0xE0 | cp >> 12);
        p[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        p[2] = (uint8_t)(0x80 | (cp & 0x3F));
        break;
    default:
        p[0] = (uint8_t)(0xF0 | cp >> 18);
        p[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        p[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        p[3] = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return len;
}

/* Exactly n bytes of valid UTF-8: characters of 1-4 bytes (the last one
 * shorter if only that fits) between ASCII runs of 0..`run` bytes. */
static void gen_text(uint8_t *t, size_t n, size_t run)
{
    size_t i = 0, k, len;
    while (i < n) {
        if (run > 0)
            for (k = rnd() % (run + 1); k > 0 && i < n; k--)
                t[i++] = (uint8_t)(rnd() & 0x7F);
        if (i < n) {
            len = 1 + rnd() % 4;
            i += put_char(t + i, len < n - i ? len : n - i);
        }
    }
}

#define NOPOS ((size_t)-1) /* a case with no corrupted position */

/* One call of the selected UTF-8 kernel on s[0:n) where the caller put it:
 * -1 unless s[0:e) is valid, complete UTF-8, else e, the start of the
 * unfinished last character (n if none). `kind`, `pos` and `byte` say which
 * case it is in a failure report (pos -1: none). */
static void check_utf8(const uint8_t *s, size_t n, const char *kind, size_t pos, unsigned byte)
{
    size_t e = ref_complete_end(s, n);
    ptrdiff_t want = ref_utf8_valid(s, e) ? (ptrdiff_t)e : -1, got;
    const char *what = NULL;
    cur_n = n;
    cur_phase = pos;
    got = ws_utf8_impl(s, n);
    cases++;
    if (got != want)
        what = "wrong result";
    else if (ws_utf8_complete_end(s, n) != e)
        what = "wrong ws_utf8_complete_end";
    if (what != NULL && ++failures <= 20)
        fprintf(stderr,
                "kernel_check: FAIL utf8 %s: %s, %s, n=%zu pos=%td byte=0x%02x: got %td, "
                "want %td\n",
                level, what, kind, n, (ptrdiff_t)pos, byte, got, want);
}

/* u8_text[0:n) at page_end - n with the byte at p set to two hostile values
 * in turn (one from a rotation, one at random), then restored. */
static void check_utf8_corrupt(uint8_t *s, size_t n, size_t p)
{
    uint8_t keep = s[p];
    s[p] = hostile[(p + n) % NHOSTILE];
    check_utf8(s, n, "one byte corrupted", p, s[p]);
    s[p] = hostile[rnd() % NHOSTILE];
    check_utf8(s, n, "one byte corrupted", p, s[p]);
    s[p] = keep;
}

/* u8_text[0:n) whole (ending at the unmapped page, and starting right after
 * one), cut at each point from `cut_from` on, then with one byte corrupted
 * at each position in `pos` (count `npos`). The prefixes and the corrupted
 * texts end at the unmapped page too, so an over-read faults. */
static void check_utf8_text(size_t n, size_t cut_from, const size_t *pos, size_t npos)
{
    uint8_t *s = page_end - n;
    size_t m, j;
    memcpy(page_start, u8_text, n);
    check_utf8(page_start, n, "valid text after an unmapped page", NOPOS, 0);
    for (m = cut_from; m <= n; m++) {
        memcpy(page_end - m, u8_text, m);
        check_utf8(page_end - m, m, m == n ? "valid text" : "valid text cut", NOPOS, 0);
    }
    memcpy(s, u8_text, n);
    for (j = 0; j < npos; j++)
        check_utf8_corrupt(s, n, pos[j]);
}

static void check_utf8_level(void)
{
    static const size_t runs[4] = {0, 16, 128, U8_SMALL_MAX};
    static size_t pos[U8_SMALL_MAX + 200]; /* the positions to corrupt */
    size_t n, p, npos, b, r, k, len;
    /* Every length: random text, every prefix, every byte corrupted. */
    for (n = 0; n <= U8_SMALL_MAX; n++) {
        gen_text(u8_text, n, runs[n % 4]);
        for (p = 0; p < n; p++)
            pos[p] = p;
        check_utf8_text(n, 0, pos, n);
    }
    /* Each hand-picked sequence at every position of ASCII and of text that
     * mixes characters of every length (between whole characters). */
    for (k = 0; k < NSNIPPETS; k++) {
        len = strlen(snippets[k].bytes);
        cases++;
        if (ref_utf8_valid((const uint8_t *)snippets[k].bytes, len) != snippets[k].valid) {
            failures++;
            fprintf(stderr, "kernel_check: FAIL the UTF-8 reference on hand-picked case %zu\n", k);
        }
        for (r = 0; r < 2; r++) {
            const char *kind = r == 0 ? "hand-picked, in ASCII" : "hand-picked, in text";
            for (p = 0; p + len <= U8_BACKGROUND; p++) {
                uint8_t *s = page_end - U8_BACKGROUND;
                if (r == 0) {
                    memset(s, 'a', U8_BACKGROUND);
                } else {
                    gen_text(s, p, 0);
                    gen_text(s + p + len, U8_BACKGROUND - p - len, 0);
                }
                memcpy(s + p, snippets[k].bytes, len);
                check_utf8(s, U8_BACKGROUND, kind, p, (uint8_t)snippets[k].bytes[0]);
            }
        }
    }
    /* Larger: an error around each 1 KiB boundary (the early exit), in each
     * of the last 80 bytes (the last blocks) and at random places; cuts at
     * each of the last 70 points. Beyond the first size, a few of each. */
    for (b = 0; b < U8_NBIG; b++) {
        static const size_t big_runs[3] = {0, 64, 4000};
        size_t tail = b == 0 ? 80 : 4, cut = b == 0 ? 70 : 6;
        n = u8_big_sizes[b];
        for (r = 0; r < 3; r++) {
            gen_text(u8_text, n, big_runs[r]);
            npos = 0;
            for (k = 1; b == 0 && k * 1024 + 3 < n; k++)
                for (p = k * 1024 - 3; p <= k * 1024 + 3; p++)
                    pos[npos++] = p;
            for (p = n - tail; p < n; p++)
                pos[npos++] = p;
            for (k = 0; k < (b == 0 ? 24 : 6); k++)
                pos[npos++] = rnd() % n;
            check_utf8_text(n, n - cut, pos, npos);
        }
    }
}

int main(int argc, char **argv)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t biggest = BIG_MAX > U8_BIG_MAX ? BIG_MAX : U8_BIG_MAX;
    size_t span = (biggest + GUARD + page - 1) / page * page;
    int levels[5], nlevels = 0, best, l;
    char names[64] = "", utf8_names[64] = "";
    uint8_t *guarded, *front;
    size_t i;

    if (argc > 1)
        rng = strtoull(argv[1], NULL, 0) | 1;
    printf("kernel_check: seed 0x%llx\n", (unsigned long long)rng);
    fflush(stdout); /* before any failure report on stderr */
    pattern = map(BIG_MAX);
    expect = map(BIG_MAX);
    sbuf = map(BIG_MAX + 64);
    dbuf = map(BIG_MAX + 2 * GUARD + 64);
    guarded = map(span + page);
    page_end = guarded + span;
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    u8_text = map(U8_BIG_MAX);
    front = map(page + span);
    page_start = front + page;
    if (mprotect(page_end, page, PROT_NONE) != 0 || mprotect(front, page, PROT_NONE) != 0) {
        perror("kernel_check: mprotect");
        return 2;
    }
    for (i = 0; i < BIG_MAX; i++)
        pattern[i] = (uint8_t)rnd();

    /* Every level the CPU has, whatever WSCODEC_SIMD the caller runs with. */
    unsetenv("WSCODEC_SIMD");
    best = ws_detect_level();
    levels[nlevels++] = WS_LEVEL_PORTABLE;
    if (best == WS_LEVEL_NEON)
        levels[nlevels++] = WS_LEVEL_NEON;
    else
        for (l = WS_LEVEL_SSE2; l <= best; l++)
            levels[nlevels++] = l;

    for (l = 0; l < nlevels; l++) {
        level = ws_mask_select(levels[l]);
        if (strcmp(level, ws_level_names[levels[l]]) != 0) {
            fprintf(stderr, "kernel_check: FAIL ws_mask_select(%s) chose %s\n",
                    ws_level_names[levels[l]], level);
            cases++;
            failures++;
            continue;
        }
        check_level();
        strcat(strcat(names, " "), level);
    }
    check_utf8_complete_end();

    /* The UTF-8 kernel of each level: none below AVX2 (nor on the portable
     * path), where the caller's DFA does all the work. */
    cur_op = "utf8";
    for (l = 0; l < nlevels; l++) {
        int none = levels[l] == WS_LEVEL_PORTABLE || levels[l] == WS_LEVEL_SSE2;
        const char *want = none ? "portable" : ws_level_names[levels[l]];
        level = ws_utf8_select(levels[l]);
        if (strcmp(level, want) != 0 || (ws_utf8_impl == NULL) != none) {
            fprintf(stderr, "kernel_check: FAIL ws_utf8_select(%s) chose %s (kernel %s)\n",
                    ws_level_names[levels[l]], level, ws_utf8_impl == NULL ? "NULL" : "set");
            cases++;
            failures++;
            continue;
        }
        if (ws_utf8_impl == NULL)
            continue;
        check_utf8_level();
        strcat(strcat(utf8_names, " "), level);
    }

    printf("kernel_check: utf8 levels:%s\n", utf8_names);
    printf("kernel_check: %lu cases passed, %lu failed (levels:%s)\n", cases - failures, failures,
           names);
    return failures ? 1 : 0;
}
