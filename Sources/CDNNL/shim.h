#ifndef AERIALSEG_CDNNL_SHIM_H
#define AERIALSEG_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

/// `DNNL_MEMORY_ALLOCATE` is a cast macro Swift cannot import.
static inline void *aerialseg_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
/// `DNNL_MEMORY_NONE` likewise.
static inline void *aerialseg_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }

/// Which of our hand-written kernels fits this CPU: 2 = AVX-512 (avx512_core), 1 = AVX2+FMA,
/// 0 = baseline x86-64. Follows oneDNN's view, so `DNNL_MAX_CPU_ISA=AVX2` also selects ours.
static inline int aerialseg_cpu_level(void) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core) return 2;
    if ((isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2) return 1;
    return 0;
}
#endif
