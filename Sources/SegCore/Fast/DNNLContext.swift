import CDNNL
import CKernels

// oneDNN's engine, stream and shared buffers, and its errors. With DNNLEngine.swift (the
// convolution layer) and DNNLPlan.swift (its per-size primitives), the only files that speak
// oneDNN's C API (v2: `dnnl_*_desc_init`, Debian's libdnnl 2.6); a port to 3.x touches only these.

/// A oneDNN call that failed: which call, oneDNN's status, and what to check.
public struct DNNLError: Error, CustomStringConvertible, Sendable {
    /// The C function that failed, with the layer it was building when known.
    public let call: String
    /// oneDNN's `dnnl_status_t` value, or `ioStatus`.
    public let status: Int
    /// Not oneDNN's: reading weights back from their temporary file (`WeightSpill`) failed.
    static let ioStatus = -1
    public var description: String {
        let name: String
        switch status {
        case 1: name = "out of memory"
        case 2: name = "invalid arguments"
        case 3: name = "unimplemented (no kernel for this shape, layout or CPU)"
        case Self.ioStatus: name = "input/output error"
        default: name = "status \(status)"
        }
        return "oneDNN: \(call) failed: \(name) (hint: DNNL_VERBOSE=1 shows what oneDNN tried; "
            + "libdnnl 2.6 (libdnnl-dev) is required)"
    }
}

@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ call: @autoclosure () -> String) throws(DNNLError) {
    if status != dnnl_success { throw DNNLError(call: call(), status: Int(status.rawValue)) }
}

/// A memory descriptor of `dims` (oneDNN's logical NCHW order) in layout `tag`.
func dnnlMemoryDesc(_ dims: [Int], _ tag: dnnl_format_tag_t, _ what: String, type: dnnl_data_type_t = dnnl_f32)
    throws(DNNLError) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    try dnnlCheck(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), type, tag),
                  "dnnl_memory_desc_init_by_tag \(dims) (\(what))")
    return md
}

/// An f32 memory descriptor of `dims` with explicit element strides.
func dnnlStridedDesc(_ dims: [Int], strides: [Int], _ what: String) throws(DNNLError) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    try dnnlCheck(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims.map(Int64.init), dnnl_f32,
                                                   strides.map(Int64.init)),
                  "dnnl_memory_desc_init_by_strides \(dims) (\(what))")
    return md
}

/// oneDNN's CPU engine, an in-order stream, and one scratchpad shared by every primitive.
///
/// Primitives run one at a time on the stream, so a single scratchpad (grown to the largest
/// request) serves them all and a tile allocates nothing; so do the other buffers of `Slot`.
/// Not thread-safe: one per worker, or behind a lock (`FastBackend` serialises its convolutions).
/// The corresponding C objects are `dnnl_engine_t` and `dnnl_stream_t`.
final class DNNLContext {
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    /// Threads for oneDNN (OpenMP) and for our own kernels (same libgomp pool).
    let threads: Int
    /// Direct convolutions in bf16 (inputs and weights; f32 accumulation and outputs).
    let bf16: Bool
    /// A Winograd-capable convolution takes the Winograd kernel from this many output pixels
    /// (n · oh · ow) up, the direct one below (`WinogradPolicy`).
    let winogradMinimumPixels: Int
    /// Primitives (with their weight layouts) a layer keeps, for its most recently used input sizes.
    let shapesPerLayer: Int
    /// Counts plan lookups: a layer's least recently used primitive is the one with the lowest.
    private var clock = 0
    /// Exact weight copies that no packed layout can give back (`WeightSpill`): made on the first
    /// spill; `.some(nil)` once making it failed (the copies then stay in memory).
    private var spill: WeightSpill?? = .none
    /// Bytes of weight copies kept in memory because no temporary file could take them.
    private(set) var unspilledBytes = 0
    /// Shared buffers by role (see `Slot`), each grown to the largest request.
    private var buffers: [(pointer: UnsafeMutableRawPointer, bytes: Int)?] = Array(repeating: nil, count: 7)

    /// Roles of the shared buffers: the primitives' scratchpad, the blocked-layout copies of a
    /// Winograd convolution's source and destination, the sub-grid batches of a dilated one, the
    /// bf16 copy of a source, and the dense copy of one part's input channels.
    enum Slot: Int {
        case scratchpad = 0, blockedSource, blockedDestination, subgridSource, subgridDestination, bf16Source,
             partSource
    }

    /// Whether oneDNN runs bf16 dot products natively on this CPU (AVX512-BF16 or AMX).
    static var cpuHasBF16: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue, bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16
    }

    /// Creates the engine; sets libgomp's thread count (which oneDNN reads when it creates a
    /// primitive, so before any layer is built).
    init(threads: Int = 2, bf16: Bool = false, winogradMinimumPixels: Int = 0, shapesPerLayer: Int = 4)
        throws(DNNLError) {
        self.threads = max(1, threads)
        self.shapesPerLayer = max(1, shapesPerLayer)
        self.bf16 = bf16
        self.winogradMinimumPixels = winogradMinimumPixels
        _ = aerialseg_omp_set_num_threads(Int32(self.threads))
        var engine: dnnl_engine_t?
        try dnnlCheck(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        guard let engine else { throw DNNLError(call: "dnnl_engine_create", status: 2) }
        var stream: dnnl_stream_t?
        let status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue)
        guard status == dnnl_success, let stream else {
            dnnl_engine_destroy(engine)
            throw DNNLError(call: "dnnl_stream_create", status: Int(status.rawValue))
        }
        self.engine = engine
        self.stream = stream
    }

    deinit {
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
        for buffer in buffers { buffer?.pointer.deallocate() }
    }

    /// The next tick of the plan clock.
    func tick() -> Int {
        clock += 1
        return clock
    }

    /// Makes this thread's OpenMP team size `threads` again (the setting is per calling thread).
    func bindThreads() { _ = aerialseg_omp_set_num_threads(Int32(threads)) }

    /// Writes an exact weight copy to the temporary file; nil where it cannot (the caller keeps it).
    func spill(_ values: [Float]) -> WeightSpill.Extent? {
        if case .none = spill { spill = .some(WeightSpill()) }
        guard let file = spill ?? nil, let extent = file.write(values) else {
            unspilledBytes += values.count * MemoryLayout<Float>.stride
            return nil
        }
        return extent
    }

    /// A copy written by `spill`, bit for bit.
    func readSpilled(_ extent: WeightSpill.Extent, _ what: String) throws(DNNLError) -> [Float] {
        guard let file = spill ?? nil, let values = file.read(extent) else {
            throw DNNLError(call: "\(what): reading the weights back from their temporary file", status: DNNLError.ioStatus)
        }
        return values
    }

    /// Bytes of weight copies in the temporary file.
    var spilledBytes: Int { (spill ?? nil)?.bytes ?? 0 }

    /// Bytes of the shared buffers as grown so far.
    var sharedBytes: Int { buffers.reduce(0) { $0 + ($1?.bytes ?? 0) } }

    /// The shared buffer for `slot`, at least `bytes` long (64-byte aligned); grows, never shrinks.
    /// A memory object on this engine: with oneDNN's own buffer (`allocate`), or with none, for a
    /// data handle set before each use.
    func memory(_ desc: dnnl_memory_desc_t, _ what: String, allocate: Bool = false) throws(DNNLError)
        -> dnnl_memory_t {
        var desc = desc
        var out: dnnl_memory_t?
        let handle = allocate ? aerialseg_dnnl_memory_allocate() : aerialseg_dnnl_memory_none()
        try dnnlCheck(dnnl_memory_create(&out, &desc, engine, handle), "dnnl_memory_create (\(what))")
        guard let out else { throw DNNLError(call: "dnnl_memory_create (\(what))", status: 2) }
        return out
    }

    /// A reorder primitive from layout `from` to layout `to`.
    func reorderPrimitive(_ from: dnnl_memory_desc_t, _ to: dnnl_memory_desc_t, _ what: String) throws(DNNLError)
        -> dnnl_primitive_t {
        var from = from, to = to
        var rpd: dnnl_primitive_desc_t?
        try dnnlCheck(dnnl_reorder_primitive_desc_create(&rpd, &from, engine, &to, engine, nil), "reorder (\(what))")
        defer { dnnl_primitive_desc_destroy(rpd) }
        var primitive: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&primitive, rpd), "reorder primitive (\(what))")
        guard let primitive else { throw DNNLError(call: "reorder primitive (\(what))", status: 2) }
        return primitive
    }

    /// Reorders `from` (layout `desc`) into `to` (layout `toDesc`) once, and waits for it.
    func reorder(from: dnnl_memory_t?, desc: dnnl_memory_desc_t, to: dnnl_memory_t, desc toDesc: dnnl_memory_desc_t,
                 _ what: String) throws(DNNLError) {
        let primitive = try reorderPrimitive(desc, toDesc, what)
        defer { dnnl_primitive_destroy(primitive) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: from), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: to)]
        try dnnlCheck(dnnl_primitive_execute(primitive, stream, 2, &args), "reorder run (\(what))")
        try dnnlCheck(dnnl_stream_wait(stream), "dnnl_stream_wait")
    }

    func buffer(_ slot: Slot, bytes: Int) -> UnsafeMutableRawPointer {
        if let buffer = buffers[slot.rawValue], buffer.bytes >= bytes { return buffer.pointer }
        buffers[slot.rawValue]?.pointer.deallocate()
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        buffers[slot.rawValue] = (pointer, bytes)
        return pointer
    }

    /// Which kernel oneDNN picked for a primitive descriptor (e.g. "brgconv:avx512_core").
    static func implementationName(_ pd: dnnl_primitive_desc_t) -> String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success,
              let name else { return "?" }
        return String(cString: name)
    }
}

