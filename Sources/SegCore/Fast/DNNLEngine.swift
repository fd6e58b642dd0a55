import CDNNL

// The convolution layer on oneDNN's C API (v2, libdnnl 2.6); the engine, stream, shared buffers
// and errors it uses are in DNNLContext.swift, its per-size primitives in DNNLPlan.swift. oneDNN
// 3.x removed that API; a port touches only these three files.

/// One convolution layer run by oneDNN on NHWC float32 activations.
///
/// Weights are `(C_out, C_in/groups, KH, KW)` (PyTorch order, BN already folded in by the caller),
/// bias `(C_out)` or nil. A primitive is created on the first call for each input size (N, H, W)
/// and reused; its weights are reordered once into the layout that primitive wants (format
/// `any`: oneDNN 2.6 picks its `brgconv` kernel and a blocked weight layout on AVX-512).
/// A layer keeps the primitives of the context's `shapesPerLayer` most recently used input
/// sizes: an older one goes, with any weight layout no kept primitive reads.
/// Activations are NHWC (`nhwc` tag) so consecutive layers need no reorder, except between
/// kernels that work in nChw16c (below), which hand each other that layout (`worksOnNChw16c`).
///
/// With `winograd`, a 3×3 stride-1 undilated convolution uses oneDNN's Winograd F(4×4, 3×3) kernel
/// (`jit_wino_4x3`: 4× fewer multiplies, ~2.5× faster here on 256–512 channels; error measured
/// ≤ 1e-6 of Σ|w·x|). oneDNN 2.6 has that kernel only for the blocked nChw16c layout: it reads an
/// nChw16c source in place and writes an nChw16c destination (`blockedSource`,
/// `blockedDestination`), and an NHWC source is reordered into a shared buffer first (a part, or a
/// caller on NHWC, also gets its destination reordered back). Shapes it does not support fall back
/// to the direct NHWC kernel.
/// A dilated 3×3 stride-1 convolution with padding = dilation d runs as an undilated Winograd
/// convolution over the d² sub-grids of its input (`Subgrid.swift`), unless it accumulates; where
/// that kernel reads and writes nChw16c, the sub-grids are gathered straight into its source and
/// scattered from its destination (no NHWC batch, no reorders).
/// Either runs only where the output has at least the context's `winogradMinimumPixels`
/// (`WinogradPolicy`); a smaller input of the same layer takes the direct kernel.
///
/// A Winograd convolution over many input channels (a multiple of `partChannels`, at least two
/// parts: the heads' 2048–4096-channel convolutions) runs as parts of `partChannels` input channels,
/// each reading its channels in place from the NHWC input and summing into the kernel's blocked
/// output (`sum` post-op; bias on the first part, ReLU on the last). The kernel's scratch (the
/// transformed input, and a transformed-weights buffer it books) and the blocked copy of the input
/// then scale with one part, not the whole: FastFCN's 4096 → 512 head asked 528 MiB of scratch.
final class DNNLConvolution {
    /// Input channels per part of a wide Winograd convolution.
    static let partChannels = 512
    let geometry: ConvGeometry
    /// Try the Winograd kernel (only ever used for 3×3, stride 1, dilation 1, groups 1).
    let winograd: Bool
    /// ReLU after the bias (and after the accumulated residual).
    let relu: Bool
    private let context: DNNLContext
    /// Our OIHW copy, while it is the only exact source of a new layout. Once an f32 blocked copy
    /// exists (a permutation of it, recoverable bit for bit) it goes; Winograd-domain and bf16
    /// copies are not invertible, so once one exists it goes to the context's temporary file
    /// (`spilled`). A dilated layer with a sub-grid convolution takes it from that one.
    private var weights: [Float]?
    /// Where the OIHW copy is in the context's `WeightSpill`, once written there.
    private var spilled: WeightSpill.Extent?
    /// Set once the temporary file could not take the OIHW copy (it then stays in `weights`).
    private var spillFailed = false
    private let bias: [Float]?
    private var plans: [PlanKey: Plan] = [:]
    /// Reordered weight copies by layout, shared by plans that want the same one.
    private var packedWeights: [(desc: dnnl_memory_desc_t, memory: dnnl_memory_t)] = []
    private var biasMemory: dnnl_memory_t?
    /// For a dilated convolution run on sub-grids: the same weights, undilated, padding 1.
    private let subgrid: DNNLConvolution?
    /// For a wide Winograd convolution: its parts by input channels, in order (else empty).
    private let parts: [DNNLConvolution]
    /// A part after the first adds to the sum so far: its plans always accumulate.
    private let addsToParts: Bool

    private struct PlanKey: Hashable {
        var n, h, w: Int
        var accumulate: Bool
        /// Channels per pixel of the NHWC source: `geometry.inChannels`, or more for a part, which
        /// reads its channels in place from a wider input.
        var sourceChannels: Int
    }

    private typealias Plan = DNNLPlan
    private typealias BlockedEdges = DNNLBlockedEdges

    /// - Parameters:
    ///   - weight: `(C_out, C_in/groups, KH, KW)` row-major, `geometry`'s sizes.
    ///   - bias: `(C_out)` or nil.
    ///   - addsToParts: for a part of a wide convolution after the first: it adds to the sum so far.
    init(context: DNNLContext, geometry: ConvGeometry, weight: [Float], bias: [Float]?, relu: Bool,
         winograd: Bool = false, addsToParts: Bool = false) {
        let g = geometry
        precondition(weight.count == g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth,
                     "conv weight count \(weight.count) does not match \(g)")
        precondition(bias == nil || bias?.count == g.outChannels, "conv bias count does not match \(g)")
        self.context = context
        self.geometry = geometry
        self.bias = bias
        self.relu = relu
        self.addsToParts = addsToParts
        let winogradShape = geometry.kernelHeight == 3 && geometry.kernelWidth == 3 && geometry.stride == 1
            && geometry.groups == 1
        self.winograd = winograd && winogradShape && geometry.dilation == 1
        if winograd && winogradShape && geometry.dilation > 1 && geometry.padding == geometry.dilation {
            var inner = geometry
            inner.dilation = 1
            inner.padding = 1
            subgrid = DNNLConvolution(context: context, geometry: inner, weight: weight, bias: bias, relu: relu,
                                      winograd: true)
        } else {
            subgrid = nil
        }
        let size = Self.partChannels, count = g.inChannels / size
        if self.winograd && g.inChannels % size == 0 && count >= 2 {
            // Weights (O, I, 3, 3): part k takes input channels [k·size, (k+1)·size) of every output.
            let taps = g.kernelHeight * g.kernelWidth
            var partGeometry = g
            partGeometry.inChannels = size
            parts = (0..<count).map { k in
                var slice = [Float]()
                slice.reserveCapacity(g.outChannels * size * taps)
                for o in 0..<g.outChannels {
                    let start = (o * g.inChannels + k * size) * taps
                    slice.append(contentsOf: weight[start..<(start + size * taps)])
                }
                return DNNLConvolution(context: context, geometry: partGeometry, weight: slice,
                                       bias: k == 0 ? bias : nil, relu: relu && k == count - 1, winograd: true,
                                       addsToParts: k > 0)
            }
            self.weights = nil
        } else {
            parts = []
            // The sub-grid convolution's OIHW copy serves this layer too, unless it runs in parts
            // (which hold only their slices).
            self.weights = subgrid?.parts.isEmpty == true ? nil : weight
        }
        // Then this layer's own copy is read only by a direct kernel at small sizes, which crop
        // sizes never reach (DeepLabV3 R-50's plain ASPP: 38 MiB per branch): to the file now.
        if subgrid?.parts.isEmpty == false { spillWeights() }
    }

    deinit {
        plans.removeAll()
        for packed in packedWeights { dnnl_memory_destroy(packed.memory) }
        if let biasMemory { dnnl_memory_destroy(biasMemory) }
    }

    /// The kernel oneDNN picked for input size (n, h, w) without `accumulate` (a dilated conv that
    /// accumulates takes the direct kernel), building the primitive if needed.
    func kernelName(n: Int, h: Int, w: Int) throws(DNNLError) -> String {
        if let subgrid, winogradRuns(n: n, h: h, w: w) {
            let d = geometry.dilation
            let (nb, hs, ws) = (n * d * d, (h + d - 1) / d, (w + d - 1) / d)
            let name = try subgrid.kernelName(n: nb, h: hs, w: ws)
            let gathered = try subgrid.nChw16cBuffers(n: nb, h: hs, w: ws) != nil ? ", gathered blocked" : ""
            return "\(name) on \(d * d) sub-grids\(gathered)"
        }
        if let first = parts.first {
            return try first.kernelName(n: n, h: h, w: w) + " in \(parts.count) parts of \(Self.partChannels) channels"
        }
        return try plan(key(n, h, w)).kernelName
    }

    /// Whether the Winograd path (plain, on sub-grids or in parts) runs for input size (n, h, w):
    /// the output has at least the context's minimum of pixels.
    private func winogradRuns(n: Int, h: Int, w: Int) -> Bool {
        let (oh, ow) = geometry.outputSize(height: h, width: w)
        return n * oh * ow >= context.winogradMinimumPixels
    }

    /// The plan key of a plain call: dense input, accumulating only for a later part.
    private func key(_ n: Int, _ h: Int, _ w: Int) -> PlanKey {
        PlanKey(n: n, h: h, w: w, accumulate: addsToParts, sourceChannels: geometry.inChannels)
    }

    /// Whether `run` for input size (n, h, w) can give its destination, and take its source, in
    /// oneDNN's nChw16c layout (`blockedDestination`, `blockedSource`): its kernel works in that
    /// layout, plain or on sub-grids gathered straight into it; not in parts, bf16 or direct.
    func worksOnNChw16c(n: Int, h: Int, w: Int, accumulate: Bool) throws(DNNLError) -> Bool {
        if let subgrid, !accumulate, winogradRuns(n: n, h: h, w: w) {
            let d = geometry.dilation
            return try subgrid.nChw16cBuffers(n: n * d * d, h: (h + d - 1) / d, w: (w + d - 1) / d) != nil
        }
        guard parts.isEmpty else { return false }
        let plan = try plan(PlanKey(n: n, h: h, w: w, accumulate: accumulate || addsToParts,
                                    sourceChannels: geometry.inChannels))
        return plan.nChw16c
    }

    /// Whether `run` for input size (n, h, w) can take its source in nChw16c (`blockedSource`):
    /// where `worksOnNChw16c`, and a bf16 kernel on a multiple of 16 channels, which converts a
    /// blocked source to its bf16 copy directly (its destination stays NHWC).
    func readsNChw16c(n: Int, h: Int, w: Int, accumulate: Bool) throws(DNNLError) -> Bool {
        if try worksOnNChw16c(n: n, h: h, w: w, accumulate: accumulate) { return true }
        if subgrid != nil, !accumulate, winogradRuns(n: n, h: h, w: w) { return false }
        guard parts.isEmpty else { return false }
        let plan = try plan(PlanKey(n: n, h: h, w: w, accumulate: accumulate || addsToParts,
                                    sourceChannels: geometry.inChannels))
        return plan.bf16BlockedInput != nil
    }

    /// For a bf16 kernel on input size (n, h, w), without a residual: the buffer its bf16 NHWC copy
    /// of the source is read from, for a producer to write that copy straight into (then
    /// `runOnBF16Source`); nil where the kernel is not bf16 direct. Valid until the next call on
    /// the context (the caller holds the engine's lock across both).
    func bf16SourceBuffer(n: Int, h: Int, w: Int) throws(DNNLError) -> UnsafeMutablePointer<UInt16>? {
        if subgrid != nil, winogradRuns(n: n, h: h, w: w) { return nil }
        guard parts.isEmpty, !addsToParts else { return nil }
        let plan = try plan(key(n, h, w))
        guard let input = plan.bf16Input else { return nil }
        return context.buffer(.bf16Source, bytes: input.bytes).assumingMemoryBound(to: UInt16.self)
    }

    /// Runs the bf16 kernel for input size (n, h, w) on the copy a producer wrote into
    /// `bf16SourceBuffer`: `y = relu?(conv(x) + bias)`, y NHWC f32.
    func runOnBF16Source(n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>) throws(DNNLError) {
        let plan = try plan(key(n, h, w))
        guard let input = plan.bf16Input else { preconditionFailure("\(geometry): not a bf16 kernel") }
        context.bindThreads()
        if plan.scratchBytes > 0 {
            try dnnlCheck(dnnl_memory_set_data_handle(plan.scratch, context.buffer(.scratchpad, bytes: plan.scratchBytes)),
                          "set scratchpad")
        }
        try dnnlCheck(dnnl_memory_set_data_handle(plan.src, context.buffer(.bf16Source, bytes: input.bytes)),
                      "set bf16 src")
        try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, y), "set dst")
        try execute(plan.primitive, &plan.args, "\(geometry), input \(n)x\(h)x\(w)")
        try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
    }

    /// Runs the convolution: `y = relu?(conv(x) + bias (+ y if accumulate))`.
    /// x is (N, H, W, C_in), y is (N, OH, OW, C_out), both NHWC and dense; only where
    /// `worksOnNChw16c`, y (`blockedDestination`) and also x (`blockedSource`) can be nChw16c, and
    /// where `readsNChw16c`, x alone.
    /// With `accumulate`, y holds the residual on entry, in y's layout (oneDNN's `sum` post-op,
    /// which measured no slower than a separate add).
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
             accumulate: Bool = false, blockedSource: Bool = false, blockedDestination: Bool = false)
        throws(DNNLError) {
        if let subgrid, !accumulate, winogradRuns(n: n, h: h, w: w) {
            let d = geometry.dilation, hs = (h + d - 1) / d, ws = (w + d - 1) / d
            if let buffers = try subgrid.nChw16cBuffers(n: n * d * d, h: hs, w: ws) {
                spaceToBatchBlocked16(x, blocked: blockedSource, n: n, h: h, w: w, c: geometry.inChannels, d: d,
                                      into: buffers.source, threads: context.threads)
                try subgrid.runBlocked(n: n * d * d, h: hs, w: ws, buffers)
                batchToSpaceBlocked16(buffers.destination, n: n, h: h, w: w, c: geometry.outChannels, d: d, into: y,
                                      blocked: blockedDestination, threads: context.threads)
                return
            }
            precondition(!blockedDestination, "\(geometry): nChw16c given to a sub-grid kernel on another layout")
            let floats = MemoryLayout<Float>.stride
            let source = context.buffer(.subgridSource, bytes: n * d * d * hs * ws * geometry.inChannels * floats)
                .assumingMemoryBound(to: Float.self)
            let result = context.buffer(.subgridDestination, bytes: n * d * d * hs * ws * geometry.outChannels * floats)
                .assumingMemoryBound(to: Float.self)
            spaceToBatch(x, n: n, h: h, w: w, c: geometry.inChannels, d: d, into: source, threads: context.threads)
            try subgrid.run(source, n: n * d * d, h: hs, w: ws, into: result)
            batchToSpace(result, n: n, h: h, w: w, c: geometry.outChannels, d: d, into: y, threads: context.threads)
            return
        }
        if !parts.isEmpty {
            precondition(!blockedDestination, "\(geometry): nChw16c asked of a convolution in parts")
            return try runParts([(x, geometry.inChannels)], n: n, h: h, w: w, into: y, accumulate: accumulate)
        }
        try runOne(x, sourceChannels: geometry.inChannels, n: n, h: h, w: w, into: y, accumulate: accumulate,
                   blockedSource: blockedSource, blockedDestination: blockedDestination)
    }

    /// Whether `plan`'s kernel (for input size (n, h, w)) reads and writes exactly nChw16c (asked
    /// once, when the plan is made: `DNNLPlan.nChw16c`).
    private func readsAndWritesNChw16c(_ plan: Plan, n: Int, h: Int, w: Int) throws(DNNLError) -> Bool {
        let g = geometry
        guard plan.edges != nil, g.inChannels % 16 == 0, g.outChannels % 16 == 0,
              var src = dnnl_primitive_desc_query_md(plan.pd, dnnl_query_src_md, 0)?.pointee,
              var dst = dnnl_primitive_desc_query_md(plan.pd, dnnl_query_dst_md, 0)?.pointee
        else { return false }
        let what = "\(g) at \(n)x\(h)x\(w)"
        let (oh, ow) = g.outputSize(height: h, width: w)
        var wantedSrc = try dnnlMemoryDesc([n, g.inChannels, h, w], dnnl_nChw16c, what)
        var wantedDst = try dnnlMemoryDesc([n, g.outChannels, oh, ow], dnnl_nChw16c, what)
        return dnnl_memory_desc_equal(&src, &wantedSrc) != 0 && dnnl_memory_desc_equal(&dst, &wantedDst) != 0
    }

    /// Where the kernel for input (n, h, w) reads and writes, when both are nChw16c (the layouts
    /// `spaceToBatchBlocked16` writes and `batchToSpaceBlocked16` reads): the context's shared
    /// blocked buffers. Nil for a kernel on NHWC, another blocked layout, or in parts.
    private func nChw16cBuffers(n: Int, h: Int, w: Int) throws(DNNLError)
        -> (source: UnsafeMutablePointer<Float>, destination: UnsafeMutablePointer<Float>)? {
        guard parts.isEmpty else { return nil }
        let plan = try plan(key(n, h, w))
        guard let edges = plan.edges, plan.nChw16c else { return nil }
        return (context.buffer(.blockedSource, bytes: edges.srcBytes).assumingMemoryBound(to: Float.self),
                context.buffer(.blockedDestination, bytes: edges.dstBytes).assumingMemoryBound(to: Float.self))
    }

    /// Runs only the kernel for input (n, h, w) on `nChw16cBuffers`' buffers, the source filled.
    private func runBlocked(n: Int, h: Int, w: Int,
                            _ buffers: (source: UnsafeMutablePointer<Float>, destination: UnsafeMutablePointer<Float>))
        throws(DNNLError) {
        let plan = try plan(key(n, h, w))
        context.bindThreads()
        if plan.scratchBytes > 0 {
            try dnnlCheck(dnnl_memory_set_data_handle(plan.scratch, context.buffer(.scratchpad, bytes: plan.scratchBytes)),
                          "set scratchpad")
        }
        try dnnlCheck(dnnl_memory_set_data_handle(plan.src, buffers.source), "set blocked src")
        try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, buffers.destination), "set blocked dst")
        try execute(plan.primitive, &plan.args, "\(geometry), input \(n)x\(h)x\(w)")
        try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
    }

    /// Whether `run(concatenating:)` can read inputs of these channel counts in place: this
    /// convolution runs in parts, and every input is a whole number of parts.
    func readsInPlace(channels: [Int]) -> Bool {
        !parts.isEmpty && channels.reduce(0, +) == geometry.inChannels
            && channels.allSatisfy { $0 > 0 && $0 % Self.partChannels == 0 }
    }

    /// The convolution of the channel concatenation of `inputs` (each NHWC, (N, H, W, C_i)),
    /// without making it: each part reads its channels where they are (`readsInPlace`).
    func run(concatenating inputs: [(pointer: UnsafePointer<Float>, channels: Int)], n: Int, h: Int, w: Int,
             into y: UnsafeMutablePointer<Float>) throws(DNNLError) {
        precondition(readsInPlace(channels: inputs.map(\.channels)), "inputs do not split into whole parts")
        try runParts(inputs, n: n, h: h, w: w, into: y, accumulate: false)
    }

    /// The parts one after another, part k reading its `partChannels` channels from the input
    /// that holds them. Where every part's kernel writes the same blocked layout, the sum stays in
    /// the shared blocked buffer from the first part to the last (no reorders between).
    private func runParts(_ inputs: [(pointer: UnsafePointer<Float>, channels: Int)], n: Int, h: Int, w: Int,
                          into y: UnsafeMutablePointer<Float>, accumulate: Bool) throws(DNNLError) {
        var sources: [(pointer: UnsafePointer<Float>, channels: Int)] = []
        for input in inputs {
            for offset in stride(from: 0, to: input.channels, by: Self.partChannels) {
                sources.append((input.pointer + offset, input.channels))
            }
        }
        precondition(sources.count == parts.count, "\(sources.count) sources for \(parts.count) parts")
        let layouts = try zip(parts, sources).map { (part, source) throws(DNNLError) in
            try part.blockedDestination(n: n, h: h, w: w, sourceChannels: source.channels)
        }
        var inBlocked = layouts.allSatisfy { $0 != nil }
        if inBlocked, var first = layouts[0] {
            for case var layout? in layouts.dropFirst() where dnnl_memory_desc_equal(&first, &layout) == 0 {
                inBlocked = false
            }
        }
        for (k, part) in parts.enumerated() {
            try part.runOne(sources[k].pointer, sourceChannels: sources[k].channels, n: n, h: h, w: w, into: y,
                            accumulate: accumulate || k > 0,
                            readsSum: !inBlocked || k == 0, writesSum: !inBlocked || k == parts.count - 1)
        }
    }

    /// The blocked layout this convolution's kernel writes for input size (n, h, w), if it has one.
    private func blockedDestination(n: Int, h: Int, w: Int, sourceChannels: Int) throws(DNNLError)
        -> dnnl_memory_desc_t? {
        let plan = try plan(PlanKey(n: n, h: h, w: w, accumulate: addsToParts, sourceChannels: sourceChannels))
        guard plan.edges != nil else { return nil }
        return dnnl_primitive_desc_query_md(plan.pd, dnnl_query_dst_md, 0)?.pointee
    }

    /// One primitive's run on `x`, NHWC with `sourceChannels` channels per pixel of which it reads
    /// the first `geometry.inChannels` (a part: `x` points at its first channel). Where the kernel
    /// works in nChw16c (`worksOnNChw16c`), y (`blockedDestination`) and x (`blockedSource`) can be
    /// in it, read and written in place. With a blocked-layout kernel, `readsSum: false` finds the
    /// sum so far in the shared blocked buffer instead of reading it from `y`, and
    /// `writesSum: false` leaves the result there instead of writing it to `y`.
    private func runOne(_ x: UnsafePointer<Float>, sourceChannels: Int, n: Int, h: Int, w: Int,
                        into y: UnsafeMutablePointer<Float>, accumulate: Bool, readsSum: Bool = true,
                        writesSum: Bool = true, blockedSource: Bool = false, blockedDestination: Bool = false)
        throws(DNNLError) {
        precondition(!addsToParts || accumulate, "a later part adds to the sum")
        let plan = try plan(PlanKey(n: n, h: h, w: w, accumulate: accumulate, sourceChannels: sourceChannels))
        context.bindThreads()
        var source = UnsafeMutableRawPointer(mutating: x)
        if sourceChannels != geometry.inChannels && plan.edges == nil {
            // A direct kernel reads dense NHWC: copy this part's channels out first.
            let c = geometry.inChannels, pixels = n * h * w
            let dense = context.buffer(.partSource, bytes: pixels * c * MemoryLayout<Float>.stride)
                .assumingMemoryBound(to: Float.self)
            for p in 0..<pixels { (dense + p * c).update(from: x + p * sourceChannels, count: c) }
            source = UnsafeMutableRawPointer(dense)
        }
        if plan.scratchBytes > 0 {
            let scratchpad = context.buffer(.scratchpad, bytes: plan.scratchBytes)
            try dnnlCheck(dnnl_memory_set_data_handle(plan.scratch, scratchpad), "set scratchpad")
        }
        let what = "\(geometry), input \(n)x\(h)x\(w)"
        if let input = plan.bf16Input {
            if blockedSource {
                guard let blocked = plan.bf16BlockedInput, sourceChannels == geometry.inChannels else {
                    preconditionFailure("\(what): nChw16c given to a bf16 kernel that cannot read it")
                }
                try reorderSource(source, user: blocked.user, by: blocked.reorder, into: plan.src, slot: .bf16Source,
                                  bytes: input.bytes, "reorder nChw16c src to bf16 (\(what))")
            } else {
                try reorderSource(source, user: input.user, by: input.reorder, into: plan.src, slot: .bf16Source,
                                  bytes: input.bytes, "reorder src to bf16 (\(what))")
            }
            try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, y), "set dst")
            try execute(plan.primitive, &plan.args, what)
            return try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
        }
        precondition(!blockedSource || blockedDestination, "\(what): an nChw16c source for an f32 kernel on NHWC")
        if blockedDestination {
            guard let edges = plan.edges, sourceChannels == geometry.inChannels else {
                preconditionFailure("\(what): nChw16c asked of a kernel on another layout")
            }
            if blockedSource {
                try dnnlCheck(dnnl_memory_set_data_handle(plan.src, source), "set nChw16c src")
            } else {
                try reorderSource(source, user: edges.userSrc, by: edges.srcIn, into: plan.src, slot: .blockedSource,
                                  bytes: edges.srcBytes, "reorder src to blocked (\(what))")
            }
            try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, y), "set nChw16c dst")
            try execute(plan.primitive, &plan.args, what)
            return try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
        }
        guard let edges = plan.edges else {
            try dnnlCheck(dnnl_memory_set_data_handle(plan.src, source), "set src")
            try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, y), "set dst")
            try execute(plan.primitive, &plan.args, what)
            return try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
        }
        try dnnlCheck(dnnl_memory_set_data_handle(edges.userDst, y), "set dst")
        try dnnlCheck(dnnl_memory_set_data_handle(plan.dst, context.buffer(.blockedDestination, bytes: edges.dstBytes)),
                      "set blocked dst")
        try reorderSource(source, user: edges.userSrc, by: edges.srcIn, into: plan.src, slot: .blockedSource,
                          bytes: edges.srcBytes, "reorder src to blocked (\(what))")
        var dstArgs = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: edges.userDst),
                       dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: plan.dst)]
        if accumulate && readsSum { try execute(edges.dstIn, &dstArgs, "reorder residual to blocked (\(what))") }
        try execute(plan.primitive, &plan.args, what)
        var outArgs = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: plan.dst),
                       dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: edges.userDst)]
        if writesSum { try execute(edges.dstOut, &outArgs, "reorder dst to NHWC (\(what))") }
        try dnnlCheck(dnnl_stream_wait(context.stream), "dnnl_stream_wait")
    }

    /// Our `source` (described by `user`) reordered by `reorder` into the kernel's source memory,
    /// which reads the context's shared buffer `slot` (the blocked or bf16 copy).
    private func reorderSource(_ source: UnsafeMutableRawPointer, user: dnnl_memory_t, by reorder: dnnl_primitive_t,
                               into kernelSource: dnnl_memory_t, slot: DNNLContext.Slot, bytes: Int,
                               _ what: String) throws(DNNLError) {
        try dnnlCheck(dnnl_memory_set_data_handle(user, source), "set src")
        try dnnlCheck(dnnl_memory_set_data_handle(kernelSource, context.buffer(slot, bytes: bytes)), "set src copy")
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: user), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: kernelSource)]
        try execute(reorder, &args, what)
    }

    private func execute(_ primitive: dnnl_primitive_t, _ args: inout [dnnl_exec_arg_t], _ what: String)
        throws(DNNLError) {
        try dnnlCheck(dnnl_primitive_execute(primitive, context.stream, Int32(args.count), &args),
                      "dnnl_primitive_execute (\(what))")
    }

    private func plan(_ key: PlanKey) throws(DNNLError) -> Plan {
        if let plan = plans[key] {
            plan.lastUse = context.tick()
            return plan
        }
        let plan = try makePlan(key)
        plan.lastUse = context.tick()
        plans[key] = plan
        while plans.count > context.shapesPerLayer, let oldest = plans.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            try evict(oldest.key)
        }
        return plan
    }

    /// Drops the primitive for `key` and every weight layout no remaining primitive reads. The
    /// last exact copy of the weights goes only once the OIHW values are kept another way
    /// (the temporary file, else memory).
    private func evict(_ key: PlanKey) throws(DNNLError) {
        plans[key] = nil
        let used = plans.values.map(\.weights)
        let unused = packedWeights.indices.filter { index in !used.contains { $0 == packedWeights[index].memory } }
        guard !unused.isEmpty else { return }
        let exact = packedWeights.indices.filter { Self.isExactCopy(packedWeights[$0].desc) }
        if !oihwElsewhere, !exact.isEmpty, exact.allSatisfy(unused.contains) {
            weights = try oihw("\(geometry)")
            spillWeights()
        }
        for index in unused.reversed() {
            dnnl_memory_destroy(packedWeights[index].memory)
            packedWeights.remove(at: index)
        }
    }

    /// Input sizes with a primitive held, weight layouts held, and how many of those are not an
    /// exact copy (Winograd domain, bf16): for tests.
    var held: (plans: Int, layouts: Int, inexactLayouts: Int) {
        (plans.count, packedWeights.count, packedWeights.filter { !Self.isExactCopy($0.desc) }.count)
    }

    private func makePlan(_ key: PlanKey) throws(DNNLError) -> Plan {
        let g = geometry
        let what = "\(g) at \(key.n)x\(key.h)x\(key.w)"
        let (oh, ow) = g.outputSize(height: key.h, width: key.w)
        guard oh > 0, ow > 0 else { throw DNNLError(call: "\(what): output would be empty", status: 2) }
        let src = try dnnlMemoryDesc([key.n, g.inChannels, key.h, key.w], dnnl_nhwc, what)
        let dst = try dnnlMemoryDesc([key.n, g.outChannels, oh, ow], dnnl_nhwc, what)
        if winograd && winogradRuns(n: key.n, h: key.h, w: key.w) {
            // A part's channels, read in place: NHWC strides of the whole input.
            let c = key.sourceChannels
            let userSrc = c == g.inChannels ? src
                : try dnnlStridedDesc([key.n, g.inChannels, key.h, key.w], strides: [key.h * key.w * c, 1, key.w * c, c], what)
            let anySrc = try dnnlMemoryDesc([key.n, g.inChannels, key.h, key.w], dnnl_format_tag_any, what)
            let anyDst = try dnnlMemoryDesc([key.n, g.outChannels, oh, ow], dnnl_format_tag_any, what)
            // Unsupported shapes (e.g. few channels) throw `unimplemented`: use the direct kernel.
            if let plan = try? makePrimitive(key, src: anySrc, dst: anyDst, algorithm: dnnl_convolution_winograd,
                                             what) {
                plan.edges = try edges(plan, userSrc: userSrc, userDst: dst, what)
                plan.nChw16c = try readsAndWritesNChw16c(plan, n: key.n, h: key.h, w: key.w)
                return plan
            }
        }
        if context.bf16 {
            // bf16 inputs and weights, f32 accumulation and output: our f32 input is converted on the way in.
            let bf16Src = try dnnlMemoryDesc([key.n, g.inChannels, key.h, key.w], dnnl_nhwc, what, type: dnnl_bf16)
            let plan = try makePrimitive(key, src: bf16Src, dst: dst, algorithm: dnnl_convolution_direct, what,
                                         weightType: dnnl_bf16)
            var bf16Desc = bf16Src
            plan.bf16Input = (try context.memory(src, what), try context.reorderPrimitive(src, bf16Src, what),
                              dnnl_memory_desc_get_size(&bf16Desc))
            if g.inChannels % 16 == 0 {
                let blocked = try dnnlMemoryDesc([key.n, g.inChannels, key.h, key.w], dnnl_nChw16c, what)
                plan.bf16BlockedInput = (try context.memory(blocked, what),
                                         try context.reorderPrimitive(blocked, bf16Src, what))
            }
            return plan
        }
        return try makePrimitive(key, src: src, dst: dst, algorithm: dnnl_convolution_direct, what)
    }

    /// Which precision a convolution runs in for input size (n, h, w): "f32 Winograd", "f32" or "bf16".
    func precision(n: Int, h: Int, w: Int) throws(DNNLError) -> String {
        if let subgrid, winogradRuns(n: n, h: h, w: w) {
            let d = geometry.dilation
            return try subgrid.precision(n: n * d * d, h: (h + d - 1) / d, w: (w + d - 1) / d)
        }
        if let first = parts.first { return try first.precision(n: n, h: h, w: w) }
        let plan = try plan(key(n, h, w))
        return plan.bf16Input != nil ? "bf16" : plan.edges != nil ? "f32 Winograd" : "f32"
    }

    /// Bytes this convolution holds for input size (n, h, w): its reordered weight copies (every
    /// layout asked for so far, sub-grid ones included) and the scratch its kernel asks of the
    /// shared buffers (scratchpad, and the blocked or bf16 copies of its source and destination).
    func memoryUse(n: Int, h: Int, w: Int) throws(DNNLError) -> (weights: Int, scratch: Int) {
        if let subgrid, winogradRuns(n: n, h: h, w: w) {
            let d = geometry.dilation, hs = (h + d - 1) / d, ws = (w + d - 1) / d
            let inner = try subgrid.memoryUse(n: n * d * d, h: hs, w: ws)
            let gathered = try subgrid.nChw16cBuffers(n: n * d * d, h: hs, w: ws) != nil
            let batches = gathered ? 0
                : n * d * d * hs * ws * (geometry.inChannels + geometry.outChannels) * MemoryLayout<Float>.stride
            return (inner.weights + packedBytes, inner.scratch + batches)
        }
        if !parts.isEmpty {  // the parts share the engine's buffers: the largest part's scratch
            let each = try parts.map { (part) throws(DNNLError) in try part.memoryUse(n: n, h: h, w: w) }
            return (each.reduce(0) { $0 + $1.weights }, each.map(\.scratch).max() ?? 0)
        }
        let plan = try plan(key(n, h, w))
        // A kernel on nChw16c writes the caller's blocked output itself: only an NHWC source is copied.
        var blockedCopies = 0
        if let edges = plan.edges {
            blockedCopies = plan.nChw16c ? edges.srcBytes : edges.srcBytes + edges.dstBytes
        }
        return (packedBytes + (subgrid?.packedBytes ?? 0), plan.scratchBytes + blockedCopies + (plan.bf16Input?.bytes ?? 0))
    }

    private var packedBytes: Int {
        packedWeights.reduce(0) { total, entry in
            var desc = entry.desc
            return total + dnnl_memory_desc_get_size(&desc)
        }
    }

    /// Reorders between our NHWC buffers and the layouts `plan`'s kernel chose.
    private func edges(_ plan: Plan, userSrc: dnnl_memory_desc_t, userDst: dnnl_memory_desc_t, _ what: String)
        throws(DNNLError) -> BlockedEdges {
        guard let src = dnnl_primitive_desc_query_md(plan.pd, dnnl_query_src_md, 0)?.pointee,
              let dst = dnnl_primitive_desc_query_md(plan.pd, dnnl_query_dst_md, 0)?.pointee
        else { throw DNNLError(call: "dnnl_primitive_desc_query_md (\(what))", status: 2) }
        var srcDesc = src, dstDesc = dst
        return BlockedEdges(
            userSrc: try context.memory(userSrc, what), userDst: try context.memory(userDst, what),
            srcIn: try context.reorderPrimitive(userSrc, src, what), dstIn: try context.reorderPrimitive(userDst, dst, what),
            dstOut: try context.reorderPrimitive(dst, userDst, what),
            srcBytes: dnnl_memory_desc_get_size(&srcDesc), dstBytes: dnnl_memory_desc_get_size(&dstDesc))
    }

    /// A convolution primitive over `src`/`dst` descriptors (NHWC, or `any` to let oneDNN choose).
    private func makePrimitive(_ key: PlanKey, src: dnnl_memory_desc_t, dst: dnnl_memory_desc_t,
                               algorithm: dnnl_alg_kind_t, _ what: String,
                               weightType: dnnl_data_type_t = dnnl_f32) throws(DNNLError) -> Plan {
        let g = geometry
        var src = src, dst = dst
        var wei = try weightDesc(tag: dnnl_format_tag_any, what, type: weightType)
        var bia = try dnnlMemoryDesc([g.outChannels], dnnl_a, what)
        var desc = dnnl_convolution_desc_t()
        let strides: [Int64] = [Int64(g.stride), Int64(g.stride)]
        let dilates: [Int64] = [Int64(g.dilation - 1), Int64(g.dilation - 1)]
        let pads: [Int64] = [Int64(g.padding), Int64(g.padding)]
        let status = bias == nil
            ? dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, algorithm,
                                                         &src, &wei, nil, &dst, strides, dilates, pads, pads)
            : dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, algorithm,
                                                         &src, &wei, &bia, &dst, strides, dilates, pads, pads)
        try dnnlCheck(status, "dnnl_dilated_convolution_forward_desc_init (\(what))")

        var attr: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
        var ops: dnnl_post_ops_t?
        try dnnlCheck(dnnl_post_ops_create(&ops), "dnnl_post_ops_create")
        defer { dnnl_post_ops_destroy(ops) }
        if key.accumulate { try dnnlCheck(dnnl_post_ops_append_sum(ops, 1), "post-op sum") }
        if relu {
            try dnnlCheck(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_relu, 0, 0), "post-op relu")
        }
        try dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops")

        var pdOut: dnnl_primitive_desc_t?
        try dnnlCheck(dnnl_primitive_desc_create(&pdOut, &desc, attr, context.engine, nil),
                      "dnnl_primitive_desc_create (\(what))")
        guard let pd = pdOut else { throw DNNLError(call: "dnnl_primitive_desc_create (\(what))", status: 2) }
        var keepPD = false
        defer { if !keepPD { dnnl_primitive_desc_destroy(pd) } }

        guard let wantedWeights = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)?.pointee,
              let scratchDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)?.pointee,
              let srcChosen = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0)?.pointee,
              let dstChosen = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)?.pointee
        else { throw DNNLError(call: "dnnl_primitive_desc_query_md (\(what))", status: 2) }
        let weightMemory = try packed(wantedWeights, what)

        var primOut: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&primOut, pd), "dnnl_primitive_create (\(what))")
        guard let primitive = primOut else { throw DNNLError(call: "dnnl_primitive_create", status: 2) }

        let srcMemory = try context.memory(srcChosen, what)
        let dstMemory = try context.memory(dstChosen, what)
        var scratch = scratchDesc
        let scratchMemory = try context.memory(scratch, what)
        let scratchBytes = dnnl_memory_desc_get_size(&scratch)
        var args = [
            dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: srcMemory),
            dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weightMemory),
            dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: dstMemory),
            dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchMemory),
        ]
        if let bias { args.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: try biasMemory(bias, bia, what))) }
        keepPD = true
        return Plan(pd: pd, primitive: primitive, src: srcMemory, dst: dstMemory, scratch: scratchMemory,
                    scratchBytes: scratchBytes, args: args, weights: weightMemory)
    }

    /// Weights in `wanted` layout: reordered from our OIHW copy the first time a layout is asked for.
    private func packed(_ wanted: dnnl_memory_desc_t, _ what: String) throws(DNNLError) -> dnnl_memory_t {
        var wanted = wanted
        for entry in packedWeights {
            var have = entry.desc
            if dnnl_memory_desc_equal(&have, &wanted) != 0 { return entry.memory }
        }
        var user = try weightDesc(tag: geometry.groups > 1 ? dnnl_goihw : dnnl_oihw, what)
        let target = try context.memory(wanted, what, allocate: true)
        var source: dnnl_memory_t?
        try oihw(what).withUnsafeBufferPointer { (buffer) throws(DNNLError) in
            let raw = UnsafeMutableRawPointer(mutating: buffer.baseAddress)
            try dnnlCheck(dnnl_memory_create(&source, &user, context.engine, raw), "weights memory (\(what))")
            defer { dnnl_memory_destroy(source) }
            try context.reorder(from: source, desc: user, to: target, desc: wanted, what)
        }
        packedWeights.append((wanted, target))
        if Self.isExactCopy(wanted) { weights = nil } else { spillWeights() }
        // A dilated layer with a layout of its own: its sub-grid convolution need not keep the
        // OIHW copy in memory for it.
        subgrid?.spillWeights()
        return target
    }

    /// Puts the OIHW copy, where still held here, in the context's temporary file (tried once).
    private func spillWeights() {
        guard !spillFailed, let copy = weights else { return }
        if let extent = context.spill(copy) { (weights, spilled) = (nil, extent) } else { spillFailed = true }
    }

    /// Whether the OIHW values can be had without this layer's packed copies: held, in the
    /// temporary file, or from a sub-grid convolution that keeps them itself.
    private var oihwElsewhere: Bool {
        weights != nil || spilled != nil || subgrid?.parts.isEmpty == true
    }

    /// Whether a packed layout holds the OIHW values bit for bit, in another order (f32, blocked).
    private static func isExactCopy(_ desc: dnnl_memory_desc_t) -> Bool {
        desc.format_kind == dnnl_blocked && desc.data_type == dnnl_f32
    }

    /// The OIHW weights: our copy, recovered exactly from an f32 blocked copy, the sub-grid
    /// convolution's (the same weights), or read back from the temporary file.
    private func oihw(_ what: String) throws(DNNLError) -> [Float] {
        if let weights { return weights }
        guard let exact = packedWeights.first(where: { Self.isExactCopy($0.desc) }) else {
            if let spilled { return try context.readSpilled(spilled, what) }
            guard let subgrid, subgrid.parts.isEmpty else {
                preconditionFailure("\(what): the OIHW weights went without an exact copy")
            }
            return try subgrid.oihw(what)
        }
        let g = geometry
        var values = [Float](repeating: 0, count: g.outChannels * (g.inChannels / g.groups) * g.kernelHeight
                                                   * g.kernelWidth)
        let user = try weightDesc(tag: g.groups > 1 ? dnnl_goihw : dnnl_oihw, what)
        try values.withUnsafeMutableBufferPointer { (buffer) throws(DNNLError) in
            var target: dnnl_memory_t?
            var desc = user
            try dnnlCheck(dnnl_memory_create(&target, &desc, context.engine, buffer.baseAddress), "weights memory (\(what))")
            defer { dnnl_memory_destroy(target) }
            guard let target else { throw DNNLError(call: "weights memory (\(what))", status: 2) }
            try context.reorder(from: exact.memory, desc: exact.desc, to: target, desc: user, what)
        }
        return values
    }

    private func biasMemory(_ bias: [Float], _ desc: dnnl_memory_desc_t, _ what: String) throws(DNNLError)
        -> dnnl_memory_t {
        if let biasMemory { return biasMemory }
        let memory = try context.memory(desc, what, allocate: true)
        var handle: UnsafeMutableRawPointer?
        try dnnlCheck(dnnl_memory_get_data_handle(memory, &handle), "bias handle")
        if let handle {
            bias.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { handle.copyMemory(from: base, byteCount: bytes.count) }
            }
        }
        biasMemory = memory
        return memory
    }

    private func weightDesc(tag: dnnl_format_tag_t, _ what: String, type: dnnl_data_type_t = dnnl_f32)
        throws(DNNLError) -> dnnl_memory_desc_t {
        let g = geometry
        if g.groups > 1 {
            return try dnnlMemoryDesc([g.groups, g.outChannels / g.groups, g.inChannels / g.groups,
                                       g.kernelHeight, g.kernelWidth], tag, what, type: type)
        }
        return try dnnlMemoryDesc([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], tag, what, type: type)
    }
}
