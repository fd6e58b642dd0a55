// The one file of SegCore that talks to OpenBLAS (CBLAS); no C type leaves it.
import CBLAS

/// Single-precision matrix product on row-major matrices with explicit leading dimensions:
/// `C = A · B + beta · C`, A is (m, k) with row stride `lda`, B is (k, n) with row stride `ldb`,
/// C is (m, n) with row stride `ldc`.
///
/// The corresponding C function is `cblas_sgemm` (OpenBLAS, which uses its own threads — both
/// cores on our machines — for large products).
@inline(__always)
func sgemm(
    m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    beta: Float = 0
) {
    precondition(m > 0 && n > 0 && k > 0, "sgemm needs positive sizes, got m=\(m) n=\(n) k=\(k)")
    precondition(m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max)
                 && lda <= Int(Int32.max) && ldb <= Int(Int32.max) && ldc <= Int(Int32.max),
                 "sgemm sizes exceed the 32-bit BLAS interface")
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans,
        blasint(m), blasint(n), blasint(k),
        1, a, blasint(lda),
        b, blasint(ldb),
        beta, c, blasint(ldc))
}
