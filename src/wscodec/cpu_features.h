/* Which SIMD instruction sets the kernels may use on this CPU, asked once.
 *
 * The extension is built with the baseline flags of the platform (-O3, no
 * -march=native) so one wheel runs everywhere; the wider kernels are compiled
 * with per-function target attributes and picked at run time from here.
 *
 *   x86_64 + gcc/clang : SSE2 always (baseline), AVX2 and AVX-512BW when the CPU
 *                        and the OS (saved vector state) support them.
 *   aarch64            : NEON always (baseline).
 *   anything else      : the portable word-at-a-time C path only.
 *
 * Defining WSCODEC_NO_SIMD (-DWSCODEC_NO_SIMD) forces that portable-only path
 * here too, e.g. to build and test it on x86_64 or aarch64.
 *
 * Setting the environment variable WSCODEC_SIMD to "portable", "sse2",
 * "avx2" or "neon" caps the choice (tests use it to run every path).
 */
#ifndef WSCODEC_CPU_FEATURES_H
#define WSCODEC_CPU_FEATURES_H

#include <stdlib.h>
#include <string.h>

#if defined(WSCODEC_NO_SIMD)
/* Neither WS_X86_SIMD nor WS_NEON: the portable path only. */
#elif (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define WS_X86_SIMD 1
#include <immintrin.h>
#include <cpuid.h>
#define WS_TARGET(t) __attribute__((target(t)))
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define WS_NEON 1
#include <arm_neon.h>
#endif

/* Levels, each implying the ones below it on its architecture. */
enum {
    WS_LEVEL_PORTABLE = 0,
    WS_LEVEL_SSE2 = 1,    /* x86_64 baseline */
    WS_LEVEL_AVX2 = 2,
    WS_LEVEL_AVX512 = 3,  /* AVX-512F + AVX-512BW */
    WS_LEVEL_NEON = 4     /* aarch64 baseline */
};

static const char *const ws_level_names[] = {"portable", "sse2", "avx2", "avx512", "neon"};

static int ws_detect_level(void)
{
    int level = WS_LEVEL_PORTABLE;
    const char *cap = getenv("WSCODEC_SIMD");
#if defined(WS_X86_SIMD)
    __builtin_cpu_init();
    level = WS_LEVEL_SSE2;
    if (__builtin_cpu_supports("avx2")) {
        level = WS_LEVEL_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
            level = WS_LEVEL_AVX512;
    }
#elif defined(WS_NEON)
    level = WS_LEVEL_NEON;
#endif
    if (cap != NULL && cap[0] != '\0') {
        int i, wanted = -1;
        for (i = 0; i < (int)(sizeof(ws_level_names) / sizeof(ws_level_names[0])); i++)
            if (strcmp(cap, ws_level_names[i]) == 0)
                wanted = i;
        /* Only ever lower the level, and only to one this architecture has. */
        if (wanted == WS_LEVEL_PORTABLE || (wanted >= 0 && wanted < level && level != WS_LEVEL_NEON))
            level = wanted;
    }
    return level;
}

/* Bytes of one L3 cache instance (the one this core shares), 0 if unknown.
 *
 * From the deterministic cache parameters (leaf 4 on Intel, 0x8000001D on
 * AMD), not the C library's sysconf, which on AMD reports the whole
 * package's L3 (256 MiB on an 8-CCD EPYC whose cores each share 32 MiB). */
static size_t ws_l3_cache_size(void)
{
#if defined(WS_X86_SIMD)
    static const unsigned int leaves[2] = {4, 0x8000001D};
    unsigned int a, b, c, d, sub, j;
    for (j = 0; j < 2; j++) {
        if (__get_cpuid_max(leaves[j] & 0x80000000, NULL) < leaves[j])
            continue;
        for (sub = 0; sub < 16; sub++) {
            __cpuid_count(leaves[j], sub, a, b, c, d);
            if ((a & 31) == 0)
                break;
            if (((a >> 5) & 7) == 3)
                return (size_t)((b >> 22) + 1) * (((b >> 12) & 1023) + 1) *
                       ((b & 4095) + 1) * ((size_t)c + 1);
        }
    }
#endif
    return 0;
}

/* Individual CPU features, for `wscodec info` (x86_64 + gcc/clang only). */
static int ws_cpu_has(const char *name)
{
#if defined(WS_X86_SIMD)
    __builtin_cpu_init();
    if (strcmp(name, "sse2") == 0) return __builtin_cpu_supports("sse2");
    if (strcmp(name, "ssse3") == 0) return __builtin_cpu_supports("ssse3");
    if (strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2");
    if (strcmp(name, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(name, "avx512bw") == 0) return __builtin_cpu_supports("avx512bw");
    return 0;
#elif defined(WS_NEON)
    return strcmp(name, "neon") == 0;
#else
    (void)name;
    return 0;
#endif
}

#endif
