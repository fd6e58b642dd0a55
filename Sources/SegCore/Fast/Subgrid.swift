// Dilated 3×3 convolution as an undilated one on sub-grids ("space to batch", as TensorFlow's
// atrous conv): with stride 1 and padding = dilation d, output pixel (y, x) reads only input pixels
// (y + (k-1)·d, x + (l-1)·d), all congruent to (y, x) modulo d. So the d² sub-grids
// x[r::d, s::d] are independent images, each convolved by the same 3×3 kernel, undilated, padding 1.
// Sub-grids shorter than ceil(H/d) are zero-filled at the end, which is what zero padding reads.

/// x (N, H, W, C) → (N·d², ceil(H/d), ceil(W/d), C), image `n·d² + r·d + s` = x[n, r::d, s::d, :].
func spaceToBatch(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, d: Int,
                  into y: UnsafeMutablePointer<Float>, threads: Int) {
    let hs = (h + d - 1) / d, ws = (w + d - 1) / d
    let rows = n * d * d * hs
    parallelRun(threads: threads) { index, count in
        for row in chunk(rows, index, count) {
            let image = row / hs, ys = row % hs
            let b = image / (d * d), r = (image / d) % d, s = image % d
            let iy = ys * d + r
            let out = y + row * ws * c
            guard iy < h else {
                out.update(repeating: 0, count: ws * c)
                continue
            }
            for xs in 0..<ws {
                let ix = xs * d + s
                if ix < w {
                    (out + xs * c).update(from: x + ((b * h + iy) * w + ix) * c, count: c)
                } else {
                    (out + xs * c).update(repeating: 0, count: c)
                }
            }
        }
    }
}

/// The inverse of `spaceToBatch` for an output of H×W: y (N·d², ceil(H/d), ceil(W/d), C) → x (N, H, W, C).
func batchToSpace(_ y: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, d: Int,
                  into x: UnsafeMutablePointer<Float>, threads: Int) {
    let hs = (h + d - 1) / d, ws = (w + d - 1) / d
    parallelRun(threads: threads) { index, count in
        for row in chunk(n * h, index, count) {
            let b = row / h, iy = row % h
            let r = iy % d, ys = iy / d
            for ix in 0..<w {
                let s = ix % d, xs = ix / d
                let image = (b * d + r) * d + s
                (x + (row * w + ix) * c).update(from: y + ((image * hs + ys) * ws + xs) * c, count: c)
            }
        }
    }
}
