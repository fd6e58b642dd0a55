import CDNNL

// A convolution primitive built for one input size, and the reorders around a blocked-layout
// kernel: what `DNNLConvolution` (DNNLEngine.swift) keeps per input size. With DNNLEngine.swift
// and DNNLContext.swift, the only files that speak oneDNN's C API.

/// One primitive of a `DNNLConvolution` for one input size, with the memories it runs on.
final class DNNLPlan {
    let pd: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    let src: dnnl_memory_t
    let dst: dnnl_memory_t
    let scratch: dnnl_memory_t
    let scratchBytes: Int
    var args: [dnnl_exec_arg_t]
    /// The packed weights it reads (one of `packedWeights`).
    let weights: dnnl_memory_t
    let kernelName: String
    /// The context's clock when it was last asked for (`shapesPerLayer` keeps the latest).
    var lastUse = 0
    /// Set when the kernel wants a blocked layout: the reorders from and to our NHWC buffers.
    var edges: DNNLBlockedEdges?
    /// Whether that layout is exactly nChw16c for source and destination, so the caller's blocked
    /// activations can be read and written in place (`DNNLConvolution.worksOnNChw16c`).
    var nChw16c = false
    /// Set for a bf16 kernel: our f32 NHWC input, its reorder into the bf16 copy (`src`), and
    /// that copy's bytes.
    var bf16Input: (user: dnnl_memory_t, reorder: dnnl_primitive_t, bytes: Int)?
    /// Also for a bf16 kernel on a multiple of 16 channels: an f32 nChw16c input and its reorder
    /// into the same copy, so a blocked activation is converted once, not to NHWC first.
    var bf16BlockedInput: (user: dnnl_memory_t, reorder: dnnl_primitive_t)?

    init(pd: dnnl_primitive_desc_t, primitive: dnnl_primitive_t, src: dnnl_memory_t, dst: dnnl_memory_t,
         scratch: dnnl_memory_t, scratchBytes: Int, args: [dnnl_exec_arg_t], weights: dnnl_memory_t) {
        self.weights = weights
        self.pd = pd
        self.primitive = primitive
        self.src = src
        self.dst = dst
        self.scratch = scratch
        self.scratchBytes = scratchBytes
        self.args = args
        self.kernelName = DNNLContext.implementationName(pd)
    }

    deinit {
        edges = nil
        if let bf16Input {
            dnnl_primitive_destroy(bf16Input.reorder)
            dnnl_memory_destroy(bf16Input.user)
        }
        if let bf16BlockedInput {
            dnnl_primitive_destroy(bf16BlockedInput.reorder)
            dnnl_memory_destroy(bf16BlockedInput.user)
        }
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
        dnnl_memory_destroy(src)
        dnnl_memory_destroy(dst)
        dnnl_memory_destroy(scratch)
    }
}

/// NHWC user memories and the reorders around a blocked-layout kernel.
final class DNNLBlockedEdges {
    let userSrc: dnnl_memory_t
    let userDst: dnnl_memory_t
    /// userSrc → the kernel's src.
    let srcIn: dnnl_primitive_t
    /// userDst → the kernel's dst (the residual, for `accumulate`).
    let dstIn: dnnl_primitive_t
    /// The kernel's dst → userDst.
    let dstOut: dnnl_primitive_t
    let srcBytes: Int
    let dstBytes: Int

    init(userSrc: dnnl_memory_t, userDst: dnnl_memory_t, srcIn: dnnl_primitive_t, dstIn: dnnl_primitive_t,
         dstOut: dnnl_primitive_t, srcBytes: Int, dstBytes: Int) {
        (self.userSrc, self.userDst, self.srcIn, self.dstIn, self.dstOut) = (userSrc, userDst, srcIn, dstIn, dstOut)
        (self.srcBytes, self.dstBytes) = (srcBytes, dstBytes)
    }

    deinit {
        for primitive in [srcIn, dstIn, dstOut] { dnnl_primitive_destroy(primitive) }
        dnnl_memory_destroy(userSrc)
        dnnl_memory_destroy(userDst)
    }
}
