/* Checks the masking kernels of simd_mask.h, at every level this CPU has,
 * against a byte-at-a-time reference; and ws_utf8_complete_end.
 *
 * Written so the aarch64 kernels, which the x86_64 machines that run the test
 * suite never execute, can be checked under qemu-aarch64
 * (tests/test_native_kernels.py cross-compiles it); natively it checks the
 * x86_64 levels, which also shows the harness itself is right.
 *
 *   cc -std=c99 -O2 -I src/wscodec tests/native/kernel_check.c && ./a.out [seed]
 *
 * Prints one summary line; exits 1 if any case failed.
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
    fprintf(stderr, "kernel_check: FAIL %s: fault (read or write past the end), n=%zu phase=%zu\n",
            level, (size_t)cur_n, (size_t)cur_phase);
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

int main(int argc, char **argv)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (BIG_MAX + GUARD + page - 1) / page * page;
    int levels[5], nlevels = 0, best, l;
    char names[64] = "";
    uint8_t *guarded;
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
    if (mprotect(page_end, page, PROT_NONE) != 0) {
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

    printf("kernel_check: %lu cases passed, %lu failed (levels:%s)\n", cases - failures, failures,
           names);
    return failures ? 1 : 0;
}
