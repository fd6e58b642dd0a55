#ifndef AERIALSEG_CKERNELS_H
#define AERIALSEG_CKERNELS_H
// AerialSeg's own C kernels (kernels.c), used by SegCore's fast backend. Swift cannot build
// per-ISA variants of a loop, and its SIMD types fall back to scalar code without a target-cpu
// flag, so these loops are C, compiled for AVX-512, AVX2 + FMA and baseline x86-64; `level` is
// `aerialseg_cpu_level()` (CDNNL): 2 = AVX-512, 1 = AVX2 + FMA, 0 = baseline.

/// Sets the OpenMP thread count that oneDNN uses. The symbol lives in libgomp, which libdnnl
/// loads but nothing links us to, so it is looked up at run time.
/// Returns 0 on success, -1 when libgomp is not loaded.
int aerialseg_omp_set_num_threads(int n);

/// The OpenMP maximum thread count, or 1 when libgomp is not loaded.
int aerialseg_omp_get_max_threads(void);

/// Fixes glibc's mmap threshold (`M_MMAP_THRESHOLD`) at `bytes`, which also stops glibc from
/// raising it each time a large mmapped block is freed. Returns 1 on success.
int aerialseg_fix_mmap_threshold(int bytes);

/// A body run by every thread of a parallel region: `index` in 0..<count.
typedef void (*aerialseg_parallel_body)(void *context, int index, int count);

/// Runs `body` on `threads` threads of libgomp's pool — the threads oneDNN uses, so our kernels
/// and oneDNN's do not compete for the cores. The body learns its index and the team size
/// (which may be smaller than asked). Runs it once on the caller (index 0, count 1) when libgomp
/// is not loaded or threads <= 1. (The corresponding libgomp entry is `GOMP_parallel`.)
void aerialseg_parallel_run(aerialseg_parallel_body body, void *context, int threads);

/// Arguments of `aerialseg_depthwise_nhwc`. One image:
/// x is (H, W, C), w is (KH, KW, C) (PyTorch's (C, 1, KH, KW) transposed), bias is (C) or NULL,
/// y is (OH, OW, C). Zero padding `pad` on every side; `relu` != 0 clamps the output at 0.
typedef struct {
    const float *x;
    const float *w;
    const float *bias;
    float *y;
    int h, wd, c, oh, ow, kh, kw, stride, pad, dilation, relu;
} aerialseg_dw_args;

/// Depthwise convolution, NHWC, output rows [oh0, oh1) of one image (so callers can split rows
/// across threads). `level` is `aerialseg_cpu_level()`: it picks the AVX-512, AVX2 or plain build
/// of the same loop (Swift cannot compile per-ISA variants itself).
void aerialseg_depthwise_nhwc(const aerialseg_dw_args *a, int oh0, int oh1, int level);

/// `aerialseg_depthwise_nhwc` with its output rounded to bf16 (round to nearest even, as oneDNN's
/// f32 → bf16 reorder on AVX512-BF16): y is (OH, OW, C) bf16, `a->y` is not used. Only on a CPU with
/// AVX512-BF16 (the caller checks). Returns 0, or -1 when its scratch row could not be allocated.
int aerialseg_depthwise_nhwc_bf16(const aerialseg_dw_args *a, unsigned short *y, int oh0, int oh1);

/// y = a + b over n floats (y may alias a or b), then max(y, 0) when relu != 0.
void aerialseg_add_relu(const float *a, const float *b, float *y, long n, int relu, int level);

/// One output row of a bilinear resize on NHWC rows: r0, r1 are the two source rows (W_in, C),
/// y is the output row (OW, C); `y[ox] = wy0·(wx0·r0[x0] + wx1·r0[x1]) + wy1·(wx0·r1[x0] + wx1·r1[x1])`
/// with per-column taps x0, x1, wx0, wx1 (PyTorch's bilinear, computed by the caller).
void aerialseg_resize_row(const float *r0, const float *r1, float wy0, float wy1, const int *x0, const int *x1,
                          const float *wx0, const float *wx1, float *y, int ow, int c, int level);

/// k×k max pooling on one NHWC image, output rows [oh0, oh1): x is (H, W, C), y is (OH, OW, C);
/// padded positions never win (every window must hold at least one input pixel, as PyTorch requires
/// padding <= k/2).
void aerialseg_maxpool_nhwc(const float *x, float *y, int h, int w, int c, int oh0, int oh1, int ow, int k, int s,
                            int p, int level);
#endif
