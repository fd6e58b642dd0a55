// AerialSeg's own C kernels (SegCore/Fast): the libgomp bridge that lets our loops share oneDNN's
// threads, glibc's mmap threshold, and the NHWC depthwise, add, resize and max-pool loops, each
// built for AVX-512, AVX2 + FMA and baseline x86-64 and picked at run time by the caller's `level`
// (`aerialseg_cpu_level()` in CDNNL, oneDNN's view of the CPU). Declarations: include/CKernels.h.
#include "CKernels.h"

#include <dlfcn.h>
#include <immintrin.h>
#include <stdlib.h>
#include <malloc.h>
#include <stddef.h>

int aerialseg_omp_set_num_threads(int n) {
    void (*fn)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!fn) return -1;
    fn(n);
    return 0;
}

int aerialseg_fix_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }

int aerialseg_omp_get_max_threads(void) {
    int (*fn)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    return fn ? fn() : 1;
}


typedef struct {
    aerialseg_parallel_body body;
    void *context;
    int (*thread_num)(void);
    int (*num_threads)(void);
} aerialseg_parallel_call;

static void aerialseg_parallel_trampoline(void *data) {
    aerialseg_parallel_call *call = (aerialseg_parallel_call *)data;
    call->body(call->context, call->thread_num(), call->num_threads());
}

void aerialseg_parallel_run(aerialseg_parallel_body body, void *context, int threads) {
    typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
    static gomp_parallel_fn parallel = NULL;
    static int (*thread_num)(void) = NULL;
    static int (*num_threads)(void) = NULL;
    if (!parallel) {
        thread_num = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_thread_num");
        num_threads = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_num_threads");
        parallel = (gomp_parallel_fn)dlsym(RTLD_DEFAULT, "GOMP_parallel");
    }
    if (threads <= 1 || !parallel || !thread_num || !num_threads) {
        body(context, 0, 1);
        return;
    }
    aerialseg_parallel_call call = {body, context, thread_num, num_threads};
    parallel(aerialseg_parallel_trampoline, &call, (unsigned)threads, 0);
}


typedef float aerialseg_f16v __attribute__((vector_size(64), aligned(4)));
typedef float aerialseg_f8v __attribute__((vector_size(32), aligned(4)));
typedef float aerialseg_f4v __attribute__((vector_size(16), aligned(4)));


/* One channel run [c0, c0 + V) of one output pixel; V is a vector width, T its type. */
#define AERIALSEG_DW_RUN(T, V, c0)                                                             \
    {                                                                                          \
        T acc = {0};                                                                           \
        if (a->bias) acc = *(const T *)(a->bias + (c0));                                       \
        for (int i = kh0; i <= kh1; ++i) {                                                     \
            const float *xr = a->x + ((size_t)(ih + i * d) * a->wd) * C + (c0);               \
            const float *wr = a->w + ((size_t)i * a->kw) * C + (c0);                           \
            for (int j = kw0; j <= kw1; ++j)                                                   \
                acc += *(const T *)(xr + (size_t)(iw + j * d) * C) * *(const T *)(wr + (size_t)j * C); \
        }                                                                                      \
        if (a->relu) acc = __builtin_elementwise_max(acc, (T){0});                             \
        *(T *)(yp + (c0)) = acc;                                                               \
    }

/* Channels [c0, c0 + V) of four output pixels side by side (see `aerialseg_dw_quad`), as four
   independent sums, not one chain per pixel. */
#define AERIALSEG_DW_QUAD_RUN(T, c0)                                                           \
    {                                                                                          \
        T acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};                                      \
        if (a->bias) acc0 = acc1 = acc2 = acc3 = *(const T *)(a->bias + (c0));                 \
        for (int i = kh0; i <= kh1; ++i) {                                                     \
            const float *xr = a->x + ((size_t)(ih + i * d) * a->wd) * C + (c0);               \
            const float *wr = a->w + ((size_t)i * a->kw) * C + (c0);                           \
            for (int j = kw0; j <= kw1; ++j) {                                                 \
                const float *xp = xr + (size_t)(iw + j * d) * C;                               \
                const T wv = *(const T *)(wr + (size_t)j * C);                                 \
                acc0 += *(const T *)(xp) * wv;                                                 \
                acc1 += *(const T *)(xp + step) * wv;                                          \
                acc2 += *(const T *)(xp + 2 * step) * wv;                                      \
                acc3 += *(const T *)(xp + 3 * step) * wv;                                      \
            }                                                                                  \
        }                                                                                      \
        if (a->relu) {                                                                         \
            acc0 = __builtin_elementwise_max(acc0, (T){0});                                    \
            acc1 = __builtin_elementwise_max(acc1, (T){0});                                    \
            acc2 = __builtin_elementwise_max(acc2, (T){0});                                    \
            acc3 = __builtin_elementwise_max(acc3, (T){0});                                    \
        }                                                                                      \
        *(T *)(yp + (c0)) = acc0;                                                              \
        *(T *)(yp + C + (c0)) = acc1;                                                          \
        *(T *)(yp + 2 * C + (c0)) = acc2;                                                      \
        *(T *)(yp + 3 * C + (c0)) = acc3;                                                      \
    }

/* Four output pixels side by side (ox .. ox + 3, the same taps in range), channels in runs of 16,
   then 8 and 4: each tap's weights are loaded once for the four, so a multiply-add needs 1.25
   loads, not 2, and the four sums are independent chains. Returns where the rest (< 4) starts. */
static inline __attribute__((always_inline)) int aerialseg_dw_quad(const aerialseg_dw_args *a, float *yp, int ih,
                                                                   int iw, int kh0, int kh1, int kw0, int kw1) {
    const int C = a->c, d = a->dilation;
    const size_t step = (size_t)a->stride * C;
    int c = 0;
    for (; c + 16 <= C; c += 16) AERIALSEG_DW_QUAD_RUN(aerialseg_f16v, c)
    for (; c + 8 <= C; c += 8) AERIALSEG_DW_QUAD_RUN(aerialseg_f8v, c)
    for (; c + 4 <= C; c += 4) AERIALSEG_DW_QUAD_RUN(aerialseg_f4v, c)
    return c;
}

/* One output pixel's channels [c0, C): runs of 64 with four independent sums, then 16, 8, 4, 1. */
static inline __attribute__((always_inline)) void aerialseg_dw_pixel(const aerialseg_dw_args *a, float *yp, int c0,
                                                                     int ih, int iw, int kh0, int kh1, int kw0,
                                                                     int kw1) {
    const int C = a->c, d = a->dilation;
    int c = c0;
    for (; c + 64 <= C; c += 64) {
        aerialseg_f16v acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
        if (a->bias) {
            acc0 = *(const aerialseg_f16v *)(a->bias + c);
            acc1 = *(const aerialseg_f16v *)(a->bias + c + 16);
            acc2 = *(const aerialseg_f16v *)(a->bias + c + 32);
            acc3 = *(const aerialseg_f16v *)(a->bias + c + 48);
        }
        for (int i = kh0; i <= kh1; ++i) {
            const float *xr = a->x + ((size_t)(ih + i * d) * a->wd) * C + c;
            const float *wr = a->w + ((size_t)i * a->kw) * C + c;
            for (int j = kw0; j <= kw1; ++j) {
                const float *xp = xr + (size_t)(iw + j * d) * C;
                const float *wp = wr + (size_t)j * C;
                acc0 += *(const aerialseg_f16v *)(xp) * *(const aerialseg_f16v *)(wp);
                acc1 += *(const aerialseg_f16v *)(xp + 16) * *(const aerialseg_f16v *)(wp + 16);
                acc2 += *(const aerialseg_f16v *)(xp + 32) * *(const aerialseg_f16v *)(wp + 32);
                acc3 += *(const aerialseg_f16v *)(xp + 48) * *(const aerialseg_f16v *)(wp + 48);
            }
        }
        if (a->relu) {
            const aerialseg_f16v z = {0};
            acc0 = __builtin_elementwise_max(acc0, z);
            acc1 = __builtin_elementwise_max(acc1, z);
            acc2 = __builtin_elementwise_max(acc2, z);
            acc3 = __builtin_elementwise_max(acc3, z);
        }
        *(aerialseg_f16v *)(yp + c) = acc0;
        *(aerialseg_f16v *)(yp + c + 16) = acc1;
        *(aerialseg_f16v *)(yp + c + 32) = acc2;
        *(aerialseg_f16v *)(yp + c + 48) = acc3;
    }
    for (; c + 16 <= C; c += 16) AERIALSEG_DW_RUN(aerialseg_f16v, 16, c)
    for (; c + 8 <= C; c += 8) AERIALSEG_DW_RUN(aerialseg_f8v, 8, c)
    for (; c + 4 <= C; c += 4) AERIALSEG_DW_RUN(aerialseg_f4v, 4, c)
    for (; c < C; ++c) {
        float acc = a->bias ? a->bias[c] : 0.0f;
        for (int i = kh0; i <= kh1; ++i)
            for (int j = kw0; j <= kw1; ++j)
                acc += a->x[((size_t)(ih + i * d) * a->wd + (iw + j * d)) * C + c] * a->w[((size_t)i * a->kw + j) * C + c];
        yp[c] = (a->relu && acc < 0) ? 0.0f : acc;
    }
}

/* f32 → bf16 by vcvtneps2bf16 (round to nearest even), the instruction of oneDNN's own reorder. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void aerialseg_to_bf16(
    const float *x, unsigned short *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* The depthwise loop; inlined into each ISA-specific wrapper below, which compiles it for that ISA.
   Rows, then pixels, then all channels of a pixel: the map streams through the caches in order
   (channel blocks outermost, each walking the whole map 256 bytes in every 2 KiB, ran 1.3–1.9×
   slower on the 512-channel ASPP maps). Four pixels with the same taps in range go together
   (`aerialseg_dw_quad`) over the channels up to a multiple of 16, then of 8 and 4, the rest pixel
   by pixel. Every output sums bias then taps in the same order on either path: the grouping does
   not change a bit.
   `aerialseg_dw_row` writes output row oy into `yrow` (OW × C f32); or, with `brow`, into `brow`
   (OW × C bf16), each group of pixels computed into `yrow` (4 × C floats, so it stays in L1) and
   rounded from there. */
static inline __attribute__((always_inline)) void aerialseg_dw_row(const aerialseg_dw_args *a, int oy, float *yrow,
                                                                   unsigned short *brow) {
    const int C = a->c, s = a->stride, d = a->dilation;
    const int ih = oy * s - a->pad;
    int kh0 = ih < 0 ? (-ih + d - 1) / d : 0;
    int kh1 = a->kh - 1;
    while (kh1 >= kh0 && ih + kh1 * d >= a->h) --kh1;
    for (int ox = 0; ox < a->ow;) {
        const int iw = ox * s - a->pad;
        int kw0 = iw < 0 ? (-iw + d - 1) / d : 0;
        int kw1 = a->kw - 1;
        while (kw1 >= kw0 && iw + kw1 * d >= a->wd) --kw1;
        float *yp = brow ? yrow : yrow + (size_t)ox * C;
        int pixels = 1;
        if (C >= 4 && ox + 3 < a->ow) {
            /* The taps in range only shrink towards either edge: equal at ox and ox + 3, equal between. */
            const int iw3 = iw + 3 * s;
            int kw03 = iw3 < 0 ? (-iw3 + d - 1) / d : 0;
            int kw13 = a->kw - 1;
            while (kw13 >= kw03 && iw3 + kw13 * d >= a->wd) --kw13;
            if (kw03 == kw0 && kw13 == kw1) {
                const int rest = aerialseg_dw_quad(a, yp, ih, iw, kh0, kh1, kw0, kw1);
                if (rest < C)
                    for (int k = 0; k < 4; ++k)
                        aerialseg_dw_pixel(a, yp + (size_t)k * C, rest, ih, iw + k * s, kh0, kh1, kw0, kw1);
                pixels = 4;
            }
        }
        if (pixels == 1) aerialseg_dw_pixel(a, yp, 0, ih, iw, kh0, kh1, kw0, kw1);
        if (brow) aerialseg_to_bf16(yp, brow + (size_t)ox * C, (size_t)pixels * C);
        ox += pixels;
    }
}

static inline __attribute__((always_inline)) void aerialseg_dw_body(const aerialseg_dw_args *a, int oh0, int oh1) {
    for (int oy = oh0; oy < oh1; ++oy) aerialseg_dw_row(a, oy, a->y + (size_t)oy * a->ow * a->c, NULL);
}

__attribute__((target("avx512f"))) static void aerialseg_dw_avx512(const aerialseg_dw_args *a, int oh0, int oh1) {
    aerialseg_dw_body(a, oh0, oh1);
}
__attribute__((target("avx2,fma"))) static void aerialseg_dw_avx2(const aerialseg_dw_args *a, int oh0, int oh1) {
    aerialseg_dw_body(a, oh0, oh1);
}
static void aerialseg_dw_generic(const aerialseg_dw_args *a, int oh0, int oh1) { aerialseg_dw_body(a, oh0, oh1); }

void aerialseg_depthwise_nhwc(const aerialseg_dw_args *a, int oh0, int oh1, int level) {
    if (level >= 2) aerialseg_dw_avx512(a, oh0, oh1);
    else if (level == 1) aerialseg_dw_avx2(a, oh0, oh1);
    else aerialseg_dw_generic(a, oh0, oh1);
}

/* Each group of output pixels in f32 into a scratch of four pixels, then rounded to bf16 from L1. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) int aerialseg_depthwise_nhwc_bf16(
    const aerialseg_dw_args *a, unsigned short *y, int oh0, int oh1) {
    const size_t n = (size_t)a->ow * a->c;
    float *group = aligned_alloc(64, (4 * (size_t)a->c * sizeof(float) + 63) & ~(size_t)63);
    if (!group) return -1;
    for (int oy = oh0; oy < oh1; ++oy) aerialseg_dw_row(a, oy, group, y + (size_t)oy * n);
    free(group);
    return 0;
}

/* Stamps out AVX-512, AVX2 and plain builds of `name##_body` (an always_inline loop) and a
   dispatcher `name(..., level)` choosing by `aerialseg_cpu_level()`. */
#define AERIALSEG_MULTIVERSION(name, params, args)                                               \
    __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body args; }   \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { name##_body args; }    \
    static void name##_generic params { name##_body args; }

static inline __attribute__((always_inline)) void aerialseg_add_relu_body(
    const float *a, const float *b, float *y, long n, int relu) {
    long i = 0;
    const aerialseg_f16v z = {0};
    for (; i + 16 <= n; i += 16) {
        aerialseg_f16v v = *(const aerialseg_f16v *)(a + i) + *(const aerialseg_f16v *)(b + i);
        if (relu) v = __builtin_elementwise_max(v, z);
        *(aerialseg_f16v *)(y + i) = v;
    }
    for (; i < n; ++i) {
        float v = a[i] + b[i];
        y[i] = (relu && v < 0) ? 0.0f : v;
    }
}
AERIALSEG_MULTIVERSION(aerialseg_add_relu, (const float *a, const float *b, float *y, long n, int relu),
                       (a, b, y, n, relu))

void aerialseg_add_relu(const float *a, const float *b, float *y, long n, int relu, int level) {
    if (level >= 2) aerialseg_add_relu_avx512(a, b, y, n, relu);
    else if (level == 1) aerialseg_add_relu_avx2(a, b, y, n, relu);
    else aerialseg_add_relu_generic(a, b, y, n, relu);
}

static inline __attribute__((always_inline)) void aerialseg_resize_row_body(
    const float *r0, const float *r1, float wy0, float wy1, const int *x0, const int *x1,
    const float *wx0, const float *wx1, float *y, int ow, int c) {
    for (int ox = 0; ox < ow; ++ox) {
        const float *p00 = r0 + (size_t)x0[ox] * c, *p01 = r0 + (size_t)x1[ox] * c;
        const float *p10 = r1 + (size_t)x0[ox] * c, *p11 = r1 + (size_t)x1[ox] * c;
        const float a0 = wx0[ox], a1 = wx1[ox];
        float *q = y + (size_t)ox * c;
        int i = 0;
        for (; i + 16 <= c; i += 16) {
            aerialseg_f16v top = a0 * *(const aerialseg_f16v *)(p00 + i) + a1 * *(const aerialseg_f16v *)(p01 + i);
            aerialseg_f16v bot = a0 * *(const aerialseg_f16v *)(p10 + i) + a1 * *(const aerialseg_f16v *)(p11 + i);
            *(aerialseg_f16v *)(q + i) = wy0 * top + wy1 * bot;
        }
        for (; i < c; ++i) {
            const float top = a0 * p00[i] + a1 * p01[i];
            const float bot = a0 * p10[i] + a1 * p11[i];
            q[i] = wy0 * top + wy1 * bot;
        }
    }
}
AERIALSEG_MULTIVERSION(aerialseg_resize_row,
                       (const float *r0, const float *r1, float wy0, float wy1, const int *x0, const int *x1,
                        const float *wx0, const float *wx1, float *y, int ow, int c),
                       (r0, r1, wy0, wy1, x0, x1, wx0, wx1, y, ow, c))

void aerialseg_resize_row(const float *r0, const float *r1, float wy0, float wy1, const int *x0,
                                        const int *x1, const float *wx0, const float *wx1, float *y, int ow,
                                        int c, int level) {
    if (level >= 2) aerialseg_resize_row_avx512(r0, r1, wy0, wy1, x0, x1, wx0, wx1, y, ow, c);
    else if (level == 1) aerialseg_resize_row_avx2(r0, r1, wy0, wy1, x0, x1, wx0, wx1, y, ow, c);
    else aerialseg_resize_row_generic(r0, r1, wy0, wy1, x0, x1, wx0, wx1, y, ow, c);
}

static inline __attribute__((always_inline)) void aerialseg_maxpool_body(
    const float *x, float *y, int h, int w, int c, int oh0, int oh1, int ow, int k, int s, int p) {
    for (int oy = oh0; oy < oh1; ++oy) {
        const int iy0 = oy * s - p;
        const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = iy0 + k > h ? h - iy0 : k;
        for (int ox = 0; ox < ow; ++ox) {
            const int ix0 = ox * s - p;
            const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = ix0 + k > w ? w - ix0 : k;
            float *q = y + ((size_t)oy * ow + ox) * c;
            int i = 0;
            for (; i + 16 <= c; i += 16) {
                aerialseg_f16v m = *(const aerialseg_f16v *)(x + ((size_t)(iy0 + ky0) * w + ix0 + kx0) * c + i);
                for (int ky = ky0; ky < ky1; ++ky)
                    for (int kx = kx0; kx < kx1; ++kx)
                        m = __builtin_elementwise_max(
                            m, *(const aerialseg_f16v *)(x + ((size_t)(iy0 + ky) * w + ix0 + kx) * c + i));
                *(aerialseg_f16v *)(q + i) = m;
            }
            for (; i < c; ++i) {
                float m = x[((size_t)(iy0 + ky0) * w + ix0 + kx0) * c + i];
                for (int ky = ky0; ky < ky1; ++ky)
                    for (int kx = kx0; kx < kx1; ++kx) {
                        const float v = x[((size_t)(iy0 + ky) * w + ix0 + kx) * c + i];
                        m = v > m ? v : m;
                    }
                q[i] = m;
            }
        }
    }
}
AERIALSEG_MULTIVERSION(aerialseg_maxpool,
                       (const float *x, float *y, int h, int w, int c, int oh0, int oh1, int ow, int k, int s, int p),
                       (x, y, h, w, c, oh0, oh1, ow, k, s, p))

void aerialseg_maxpool_nhwc(const float *x, float *y, int h, int w, int c, int oh0, int oh1, int ow,
                                          int k, int s, int p, int level) {
    if (level >= 2) aerialseg_maxpool_avx512(x, y, h, w, c, oh0, oh1, ow, k, s, p);
    else if (level == 1) aerialseg_maxpool_avx2(x, y, h, w, c, oh0, oh1, ow, k, s, p);
    else aerialseg_maxpool_generic(x, y, h, w, c, oh0, oh1, ow, k, s, p);
}
