import CDNNL
import Foundation

/// The fast CPU backend: NHWC activations, convolutions on oneDNN 2.6 (f32: `brgconv` kernels, and
/// Winograd for 3×3 stride-1 ones, dilated ones through sub-grids), our own depthwise kernel, and
/// NHWC loops for the other ops.
///
/// Measured on 2 cores (AMD EPYC, AVX-512 at ~114 GFLOP/s per core), full-size DeepLabV3+ R-18-D8
/// at 512²: 221 ms per tile with Winograd, 508 ms with oneDNN's direct kernels only; the reference
/// backend (im2col + OpenBLAS) takes 930–1220 ms.
///
/// Activations are NHWC from `upload` to `download`, except that a Winograd convolution leaves its
/// output in oneDNN's nChw16c layout for the next one (ResNet stages, the ASPP bottleneck), and the
/// first op that wants NHWC converts it in place (`FastActivation.Layout`). Each convolution keeps
/// one oneDNN primitive per input size, created on first use and reused, with its weights
/// reordered once; every primitive shares one scratchpad, and activation buffers come from a pool,
/// so a tile after the first allocates nothing. BatchNorm arrives folded (`ConvSpec`), ReLU and the
/// residual add run as oneDNN post-ops. Depthwise convolutions run our kernel (oneDNN 2.6 is
/// 10–40× slower on the ASPP's dilated ones). oneDNN and our loops share libgomp's threads.
///
/// Thread-safety: the value can be shared; convolutions are serialised by one lock (each already
/// uses every thread of the team), the other ops run concurrently. An activation belongs to the
/// pass that made it: an op may convert it in place, so two threads must not use one at once.
public struct FastBackend: Backend {
    public typealias Activation = FastActivation
    public typealias Conv = FastConv

    let engine: FastEngine

    /// - Parameters:
    ///   - threads: threads for oneDNN and our kernels (libgomp's team size); 2 by default.
    ///   - winograd: which 3×3 stride-1 convolutions run oneDNN's Winograd kernel (see
    ///     `WinogradPolicy` and `DNNLConvolution`).
    ///   - precision: `.bf16` runs the direct (non-Winograd) convolutions with bf16 inputs and weights
    ///     and f32 accumulation, where the CPU has AVX512-BF16 (else f32: see `precision`).
    public init(threads: Int = 2, winograd: WinogradPolicy = .standard, precision: Precision = .f32) throws {
        engine = try FastEngine(threads: threads, winograd: winograd,
                                bf16: precision == .bf16 && DNNLContext.cpuHasBF16)
    }

    public var name: String { "onednn" }

    /// The precision the convolutions run in: `.bf16` only when asked and the CPU has it.
    public var precision: Precision { engine.context.bf16 ? Precision.bf16 : Precision.f32 }

    /// Whether this CPU runs bf16 convolutions natively (oneDNN's ISA detection: AVX512-BF16 or AMX).
    public static var cpuHasBF16: Bool { DNNLContext.cpuHasBF16 }

    /// Threads used per op.
    public var threads: Int { engine.threads }

    /// What the backend holds besides the layers' packed weights, in bytes (for `bench --profile`):
    /// its idle activation arenas, idle pooled buffers, the convolutions' shared buffers
    /// (scratchpad, blocked, sub-grid and bf16 copies), each grown to its largest request, and the
    /// exact weight copies of layers whose packed weights cannot give them back: in the temporary
    /// file (`spilled`, not in memory) or, where no file could take them, in memory (`unspilled`).
    public var heldBytes: (arenas: Int, pooled: Int, shared: Int, spilled: Int, unspilled: Int) {
        engine.lock.lock()
        defer { engine.lock.unlock() }
        let context = engine.context
        return (engine.arenas.idleBytes, engine.pool.idleBytesHeld, context.sharedBytes, context.spilledBytes,
                context.unspilledBytes)
    }

    public func makeConv(_ spec: ConvSpec) throws -> FastConv {
        try FastConv(spec, engine: engine)
    }

    public func shape(of x: FastActivation) -> Shape4 { x.shape }

    /// x (N,C,H,W) → (N,OC,OH,OW): `relu?(conv(x) + bias + residual)`. Throws when the input is
    /// smaller than the window, or a `DNNLError` when oneDNN cannot build the primitive for this size.
    /// A convolution whose kernel works in nChw16c (Winograd) reads an nChw16c `x` as it is and
    /// leaves its output in nChw16c; a bf16 one reads an nChw16c `x` into its bf16 copy directly
    /// (`DNNLConvolution.readsNChw16c`); every other one is given NHWC.
    public func conv2d(_ x: FastActivation, _ conv: FastConv, residual: FastActivation?) throws -> FastActivation {
        try conv2d(x, conv, residual: residual, overwritingResidual: false)
    }

    /// Writes the output over the residual where the caller gave it up and nobody else holds it
    /// (`isKnownUniquelyReferenced`), and it is already in the layout the kernel writes: a oneDNN
    /// convolution then adds to it in place (`sum` post-op) instead of a copy first (ResNet's
    /// blocks: 22 MiB of copies per DeepLabV3+ tile at 512²). Else as `conv2d(_:_:residual:)`.
    public func conv2d(_ x: FastActivation, _ conv: FastConv, accumulatingInto residual: consuming FastActivation)
        throws -> FastActivation {
        let unique = isKnownUniquelyReferenced(&residual)
        return try conv2d(x, conv, residual: residual, overwritingResidual: unique)
    }

    private func conv2d(_ x: FastActivation, _ conv: FastConv, residual: FastActivation?,
                        overwritingResidual: Bool) throws -> FastActivation {
        let s = x.shape, g = conv.geometry
        precondition(s.c == g.inChannels, "conv2d: input \(s) for a conv with \(g.inChannels) input channels")
        let outShape = try g.outputShape(for: s)
        if let residual {
            precondition(residual.shape == outShape, "conv2d: residual \(residual.shape) for output \(outShape)")
        }
        switch conv.kernel {
        case .onednn(let dnnl):
            engine.lock.lock()
            defer { engine.lock.unlock() }
            let blocked = try dnnl.worksOnNChw16c(n: s.n, h: s.h, w: s.w, accumulate: residual != nil)
            let readsBlocked = try blocked || dnnl.readsNChw16c(n: s.n, h: s.h, w: s.w, accumulate: residual != nil)
            // Locals, kept alive across the calls below: `nhwc` of an NCHW activation is a fresh copy.
            let source = readsBlocked && x.layout == .nChw16c ? x : nhwc(x)
            let layout: FastActivation.Layout = blocked ? .nChw16c : .nhwc
            if let residual, overwritingResidual, residual.layout == layout, residual !== source {
                try withExtendedLifetime(source) { () throws(DNNLError) in
                    try dnnl.run(source.pointer, n: s.n, h: s.h, w: s.w, into: residual.pointer, accumulate: true,
                                 blockedSource: source.layout == .nChw16c, blockedDestination: blocked)
                }
                return residual
            }
            let out = make(outShape, layout)
            if let residual {
                let given = residual.layout == out.layout ? residual : nhwc(residual)
                withExtendedLifetime(given) {
                    if given.layout == out.layout {
                        parallelCopy(given.pointer, out.pointer, count: outShape.count, threads: engine.threads)
                    } else {
                        nhwcToNChw16c(given.pointer, out.pointer, outShape, threads: engine.threads)
                    }
                }
            }
            try withExtendedLifetime(source) { () throws(DNNLError) in
                try dnnl.run(source.pointer, n: s.n, h: s.h, w: s.w, into: out.pointer, accumulate: residual != nil,
                             blockedSource: source.layout == .nChw16c, blockedDestination: blocked)
            }
            return out
        case .depthwise(let depthwise):
            let x = nhwc(x), residual = residual.map(nhwc)
            let out = make(outShape)
            withExtendedLifetime(x) {
                depthwise.run(x.pointer, n: s.n, h: s.h, w: s.w, into: out.pointer,
                              relu: conv.relu && residual == nil)
            }
            if let residual { withExtendedLifetime(residual) { addInPlace(out, residual, relu: conv.relu) } }
            return out
        }
    }

    /// A depthwise convolution (our kernel) feeding a bf16 oneDNN one writes its output straight
    /// into that convolution's bf16 source, rounded as oneDNN's reorder would round it: the same
    /// bits as the two run one after the other, without the f32 map between them or the reorder
    /// (DeepLabV3+'s ASPP branches and decoder: 41 MiB per 512² tile). Else the two in turn.
    public func separableConv(_ x: FastActivation, _ depthwise: FastConv, _ pointwise: FastConv) throws
        -> FastActivation {
        guard case .depthwise(let dw) = depthwise.kernel, case .onednn(let pw) = pointwise.kernel, engine.context.bf16
        else { return try conv2d(conv2d(x, depthwise), pointwise) }
        let mid = try depthwise.geometry.outputShape(for: x.shape)
        let outShape = try pointwise.geometry.outputShape(for: mid)
        let source = nhwc(x)
        let fused: FastActivation? = try withExtendedLifetime(source) {
            // The bf16 source is a shared buffer of the engine: written and read under its lock.
            engine.lock.lock()
            defer { engine.lock.unlock() }
            guard let buffer = try pw.bf16SourceBuffer(n: mid.n, h: mid.h, w: mid.w) else { return nil }
            dw.run(source.pointer, n: mid.n, h: x.shape.h, w: x.shape.w, intoBF16: buffer)
            let out = make(outShape)
            try pw.runOnBF16Source(n: mid.n, h: mid.h, w: mid.w, into: out.pointer)
            engine.fusedSeparable += 1
            return out
        }
        return try fused ?? conv2d(conv2d(source, depthwise), pointwise)
    }

    /// Runs `body` with this thread's activations in the arena for passes of kind `key`
    /// (`ActivationArena`): the first pass of a kind records its buffers, later ones reuse one
    /// block laid out from them. A pass inside another uses the outer one's.
    public func withActivationArena<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
        if ArenaBinding.current != nil { return try body() }
        if let arena = engine.arenas.checkOut(key) {
            arena.begin()
            defer { engine.arenas.checkIn(key, arena) }
            return try ArenaBinding.arena(arena).bind(body)
        }
        let recorder = ArenaRecorder()
        defer { engine.arenas.checkIn(key, ActivationArena(recorder)) }
        return try ArenaBinding.recording(recorder).bind(body)
    }

    /// The convolution of the inputs' channel concatenation. A oneDNN convolution that runs in
    /// parts of whole inputs (`DNNLConvolution.readsInPlace`) reads them where they are: no
    /// concatenated copy (FastFCN's PSP bottleneck: 64 MiB per 512² tile). One whose kernel works
    /// in nChw16c gets the inputs (channels in blocks of 16) gathered straight into that layout,
    /// instead of concatenated in NHWC and reordered (DeepLabV3+'s ASPP bottleneck). Else concat,
    /// then conv.
    public func conv2d(concatenating xs: [FastActivation], _ conv: FastConv) throws -> FastActivation {
        guard case .onednn(let dnnl) = conv.kernel, let first = xs.first?.shape,
              xs.allSatisfy({ $0.shape.n == first.n && $0.shape.size == first.size }) else {
            return try conv2d(concatChannels(xs), conv, residual: nil)
        }
        let total = xs.reduce(0) { $0 + $1.shape.c }
        let whole = Shape4(n: first.n, c: total, h: first.h, w: first.w)
        guard dnnl.readsInPlace(channels: xs.map(\.shape.c)) else {
            let blocked: Bool = try {
                guard total == conv.geometry.inChannels, xs.allSatisfy({ $0.shape.c % 16 == 0 }) else { return false }
                engine.lock.lock()
                defer { engine.lock.unlock() }
                return try dnnl.worksOnNChw16c(n: first.n, h: first.h, w: first.w, accumulate: false)
            }()
            guard blocked else { return try conv2d(concatChannels(xs), conv, residual: nil) }
            let gathered = make(whole, .nChw16c)
            var block = 0
            for x in xs {
                let s = x.shape, plane = s.h * s.w
                if x.layout == .nChw16c {
                    for n in 0..<s.n {
                        parallelCopy(x.pointer + n * s.c * plane, gathered.pointer + (n * total / 16 + block) * plane * 16,
                                     count: s.c * plane, threads: engine.threads)
                    }
                } else {
                    let given = nhwc(x)
                    withExtendedLifetime(given) {
                        nhwcToNChw16c(given.pointer, gathered.pointer, s, imageBlocks: total / 16, firstBlock: block,
                                      threads: engine.threads)
                    }
                }
                block += s.c / 16
            }
            return try conv2d(gathered, conv, residual: nil)
        }
        let inputs = xs.map(nhwc)
        let out = make(try conv.geometry.outputShape(for: whole))
        engine.lock.lock()
        defer { engine.lock.unlock() }
        try withExtendedLifetime(inputs) { () throws(DNNLError) in
            try dnnl.run(concatenating: inputs.map { (UnsafePointer($0.pointer), $0.shape.c) }, n: first.n,
                         h: first.h, w: first.w, into: out.pointer)
        }
        return out
    }
}

/// Which 3×3 stride-1 convolutions run oneDNN's Winograd F(4×4, 3×3) kernel.
///
/// Winograd does 4× fewer multiplies than a direct kernel but keeps its weights in the transformed
/// domain, 4× their parameters, and its advantage needs tiles to amortise them over. On the
/// seed models at 512², 512-channel layers run at 630–670 direct-equivalent GFLOP/s over 64²
/// (direct f32: ≈ 215), at 334–453 over 16² where FastFCN's 2048 → 512 head conv holds 144 MiB of
/// transformed weights for 16 tiles. Below `standard`'s 32 × 32 output pixels the direct kernel
/// runs instead: 4× less weight memory for a few ms (and in bf16 mode, direct is bf16 and no slower).
public enum WinogradPolicy: Sendable, Hashable {
    /// Every convolution takes a direct kernel.
    case never
    /// Every eligible convolution whose output (batch × height × width) has at least this many
    /// pixels; 0: all of them, at any size.
    case fromPixels(Int)

    /// Winograd from 32 × 32 output pixels up.
    public static let standard = WinogradPolicy.fromPixels(1024)
    /// Winograd wherever the kernel applies (tests exercise it on small inputs with this).
    public static let always = WinogradPolicy.fromPixels(0)

    /// The smallest output (pixels) that runs Winograd; `Int.max` for `never`.
    var minimumPixels: Int {
        switch self {
        case .never: return .max
        case .fromPixels(let pixels): return max(0, pixels)
        }
    }
}

/// A convolution prepared for `FastBackend`: a oneDNN convolution, or our depthwise kernel.
public final class FastConv: @unchecked Sendable {
    enum Kernel {
        case onednn(DNNLConvolution)
        case depthwise(DepthwiseConvolution)
    }

    let geometry: ConvGeometry
    let relu: Bool
    let kernel: Kernel
    /// The engine's convolution lock (plans are built lazily, also by `implementation`).
    private let lock: NSLock

    /// Which kernel runs this convolution ("onednn" or "depthwise").
    public var kernelKind: String {
        if case .depthwise = kernel { return "depthwise" }
        return "onednn"
    }

    init(_ spec: ConvSpec, engine: FastEngine) throws {
        geometry = spec.geometry
        relu = spec.relu
        lock = engine.lock
        // Every depthwise conv runs our kernel: at dilation 1 it matches oneDNN's brdgmm
        // (1.2 vs 1.3 ms on the DeepLabV3+ separable convs), dilated it is 10–40× faster.
        if geometry.isDepthwise {
            kernel = .depthwise(DepthwiseConvolution(geometry: geometry, weight: spec.weight.data, bias: spec.bias,
                                                     relu: spec.relu, threads: engine.threads))
        } else {
            // Under the engine's lock: a layer may write the context's weight spill at creation.
            engine.lock.lock()
            defer { engine.lock.unlock() }
            kernel = .onednn(DNNLConvolution(context: engine.context, geometry: geometry, weight: spec.weight.data,
                                             bias: spec.bias, relu: spec.relu, winograd: engine.winograd != .never))
        }
    }

    /// The kernel and its arithmetic for an input of n×h×w, for `bench --profile`: e.g.
    /// "brgconv:avx512_core, bf16", "wino_reorder:avx512_core, f32 Winograd", "aerialseg depthwise, f32".
    public func profileDescription(n: Int, h: Int, w: Int) -> String {
        switch kernel {
        case .depthwise: return "aerialseg depthwise (level \(aerialseg_cpu_level())), f32"
        case .onednn(let dnnl):
            lock.lock()
            defer { lock.unlock() }
            let name = (try? dnnl.kernelName(n: n, h: h, w: w)) ?? "?"
            let arithmetic = (try? dnnl.precision(n: n, h: h, w: w)) ?? "?"
            return "\(name), \(arithmetic)"
        }
    }

    /// Bytes held for an input of n×h×w, for `bench --profile`: the reordered weights, and the
    /// scratch asked of the engine's shared buffers (each grown to the largest request of any layer).
    public func memoryUse(n: Int, h: Int, w: Int) -> (weights: Int, scratch: Int) {
        switch kernel {
        case .depthwise: return (geometry.outChannels * geometry.kernelHeight * geometry.kernelWidth
                                 * MemoryLayout<Float>.stride, 0)
        case .onednn(let dnnl):
            lock.lock()
            defer { lock.unlock() }
            return (try? dnnl.memoryUse(n: n, h: h, w: w)) ?? (0, 0)
        }
    }

    /// The oneDNN kernel chosen for an input of n×h×w (e.g. "brgconv:avx512_core"), or "depthwise".
    public func implementation(n: Int, h: Int, w: Int) throws -> String {
        switch kernel {
        case .depthwise: return "aerialseg depthwise (level \(aerialseg_cpu_level()))"
        case .onednn(let dnnl):
            lock.lock()
            defer { lock.unlock() }
            return try dnnl.kernelName(n: n, h: h, w: w)
        }
    }
}

/// What a `FastBackend` shares between its copies: the oneDNN context, the lock that serialises
/// convolutions (shared primitive caches and scratchpad), and the buffer pool.
final class FastEngine: @unchecked Sendable {
    let context: DNNLContext
    let lock = NSLock()
    let pool = BufferPool()
    let arenas = ArenaCache()
    let threads: Int
    let winograd: WinogradPolicy
    let level = aerialseg_cpu_level()
    /// Separable convolutions run fused (`FastBackend.separableConv`), under `lock`: for tests.
    var fusedSeparable = 0

    init(threads: Int, winograd: WinogradPolicy, bf16: Bool) throws {
        context = try DNNLContext(threads: threads, bf16: bf16, winogradMinimumPixels: winograd.minimumPixels)
        self.threads = context.threads
        self.winograd = winograd
    }
}
