#ifndef AERIALSEG_CGDAL_SHIM_H
#define AERIALSEG_CGDAL_SHIM_H
#include <gdal.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

/// A CPLErrorHandler that records nothing and prints nothing; errors are read back with
/// CPLGetLastErrorType/No/Msg after each call. (Swift cannot pass a C function literal of this
/// exact calling convention portably, so it lives here.)
static inline void aerialseg_quiet_error_handler(CPLErr eErrClass, CPLErrorNum nError, const char *msg) {
    (void)eErrClass; (void)nError; (void)msg;
}

/// Pushes the quiet handler for the current thread (GDAL error handlers are thread-local).
/// CPLQuietErrorHandler still records the last error, which is what we read.
static inline void aerialseg_push_quiet_handler(void) { CPLPushErrorHandler(CPLQuietErrorHandler); }
static inline void aerialseg_pop_handler(void) { CPLPopErrorHandler(); }

#endif
