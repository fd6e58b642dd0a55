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

// The same two maps with the sub-grid batch in oneDNN's nChw16c layout (channel blocks of 16,
// `((image · C/16 + block) · hs + ys) · ws + xs`, then the 16 channels), which is what its Winograd
// kernel reads and writes: the sub-grids are gathered straight into the kernel's source and
// scattered from its destination, with no NHWC batch and no reorders between. C is a multiple of 16.
// The whole image is NHWC, or nChw16c itself (`blocked`: a neighbouring Winograd layer's output).

/// Where channel block `block` of pixel (b, iy, ix) of an (N, H, W, C) image starts: NHWC, or nChw16c.
@inline(__always)
private func blockStart(_ b: Int, _ iy: Int, _ ix: Int, block: Int, h: Int, w: Int, c: Int, blocked: Bool) -> Int {
    blocked ? (((b * (c / 16) + block) * h + iy) * w + ix) * 16 : ((b * h + iy) * w + ix) * c + block * 16
}

/// x (N, H, W, C), NHWC or nChw16c (`blocked`) → the sub-grid batch (N·d², C, ceil(H/d), ceil(W/d)) in nChw16c.
func spaceToBatchBlocked16(_ x: UnsafePointer<Float>, blocked: Bool = false, n: Int, h: Int, w: Int, c: Int, d: Int,
                           into y: UnsafeMutablePointer<Float>, threads: Int) {
    precondition(c % 16 == 0, "nChw16c needs channels in blocks of 16")
    let hs = (h + d - 1) / d, ws = (w + d - 1) / d, blocks = c / 16
    parallelRun(threads: threads) { index, count in
        for row in chunk(n * d * d * hs, index, count) {
            let image = row / hs, ys = row % hs
            let b = image / (d * d), r = (image / d) % d, s = image % d
            let iy = ys * d + r
            for block in 0..<blocks {
                let out = y + ((image * blocks + block) * hs + ys) * ws * 16
                guard iy < h else {
                    out.update(repeating: 0, count: ws * 16)
                    continue
                }
                let source = x + blockStart(b, iy, 0, block: block, h: h, w: w, c: c, blocked: blocked)
                let step = blocked ? 16 : c
                for xs in 0..<ws {
                    let ix = xs * d + s
                    if ix < w {
                        (out + xs * 16).update(from: source + ix * step, count: 16)
                    } else {
                        (out + xs * 16).update(repeating: 0, count: 16)
                    }
                }
            }
        }
    }
}

/// The inverse of `spaceToBatchBlocked16` for an output of H×W: the nChw16c sub-grid batch →
/// x (N, H, W, C), NHWC or nChw16c (`blocked`).
func batchToSpaceBlocked16(_ y: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, d: Int,
                           into x: UnsafeMutablePointer<Float>, blocked: Bool = false, threads: Int) {
    precondition(c % 16 == 0, "nChw16c needs channels in blocks of 16")
    let hs = (h + d - 1) / d, ws = (w + d - 1) / d, blocks = c / 16
    parallelRun(threads: threads) { index, count in
        for row in chunk(n * h, index, count) {
            let b = row / h, iy = row % h
            let r = iy % d, ys = iy / d
            for block in 0..<blocks {
                let out = x + blockStart(b, iy, 0, block: block, h: h, w: w, c: c, blocked: blocked)
                let step = blocked ? 16 : c
                for ix in 0..<w {
                    let s = ix % d, xs = ix / d
                    let image = (b * d + r) * d + s
                    (out + ix * step).update(from: y + (((image * blocks + block) * hs + ys) * ws + xs) * 16, count: 16)
                }
            }
        }
    }
}
