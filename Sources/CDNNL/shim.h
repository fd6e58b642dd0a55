#ifndef AERIALSEG_CDNNL_SHIM_H
#define AERIALSEG_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

/// `DNNL_MEMORY_ALLOCATE` is a cast macro Swift cannot import.
static inline void *aerialseg_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
/// `DNNL_MEMORY_NONE` likewise.
static inline void *aerialseg_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }

/// OpenMP's thread-count setter (oneDNN is built with libgomp; Swift's clang has no omp.h).
extern void omp_set_num_threads(int);
extern int omp_get_max_threads(void);
#endif
