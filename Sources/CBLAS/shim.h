#ifndef AERIALSEG_CBLAS_SHIM_H
#define AERIALSEG_CBLAS_SHIM_H
#include <cblas.h>
#endif
