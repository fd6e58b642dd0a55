import CKernels

/// Runs `body(index, count)` once on each thread of libgomp's pool (the threads oneDNN runs on),
/// so our kernels and oneDNN's share two cores without a second thread pool spinning against
/// the first. `count` may be smaller than `threads`; with one thread the body runs inline.
/// The corresponding libgomp entry is `GOMP_parallel` (see `aerialseg_parallel_run` in CKernels).
func parallelRun(threads: Int, _ body: (_ index: Int, _ count: Int) -> Void) {
    if threads <= 1 {
        body(0, 1)
        return
    }
    withoutActuallyEscaping(body) { escapable in
        var closure = escapable
        withUnsafeMutablePointer(to: &closure) { pointer in
            aerialseg_parallel_run({ context, index, count in
                guard let context else { return }
                context.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(index), Int(count))
            }, pointer, Int32(threads))
        }
    }
}

/// The part `index` of `count` nearly equal parts of `0..<total`.
@inline(__always)
func chunk(_ total: Int, _ index: Int, _ count: Int) -> Range<Int> {
    let base = total / count, extra = total % count
    let start = index * base + min(index, extra)
    return start..<(start + base + (index < extra ? 1 : 0))
}

/// `dst[0..<count] = src[0..<count]`, split over the team when large (a residual of 4–8 MiB
/// copied by one thread took ~0.8 ms of a 2-core pass).
func parallelCopy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
    parallelRun(threads: count >= 1 << 16 ? threads : 1) { index, parts in
        let range = chunk(count, index, parts)
        (dst + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
    }
}
