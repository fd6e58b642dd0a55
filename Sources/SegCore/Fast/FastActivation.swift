import Foundation
import Synchronization

/// An activation of `FastBackend`: float32 values in a 64-byte-aligned buffer taken from the
/// backend's pool, NHWC between layers.
///
/// NHWC keeps channels contiguous, which is what oneDNN's brgconv kernels and our depthwise,
/// pooling and resize loops want, so no layer pays a reorder; `FastBackend.upload` / `download`
/// reorder at the model's edges. A resize whose output has few channels (the logits) writes NCHW
/// planes instead, because the last step is a download to NCHW anyway (`layout == .nchw`).
/// A convolution whose kernel works in oneDNN's nChw16c layout (Winograd) leaves its output there
/// (`layout == .nChw16c`), so the next such convolution and a residual read it as it is; the first
/// op that wants NHWC converts the activation in place (`FastBackend.nhwc`), once.
public final class FastActivation {
    /// Memory order of the values.
    public enum Layout: Sendable {
        /// (N, H, W, C), channels fastest: every op accepts it.
        case nhwc
        /// (N, C, H, W): only produced by a small-channel resize; other ops convert it first.
        case nchw
        /// (N, C/16, H, W, 16): oneDNN's blocked layout, C a multiple of 16. Produced by a
        /// convolution whose kernel writes it, and kept by max pooling, elementwise maps, a residual
        /// copied into such a convolution's output and a concatenation gathered for one; other ops
        /// convert it to NHWC first.
        case nChw16c
    }

    /// The logical NCHW shape.
    public let shape: Shape4
    /// Changes only from `.nChw16c` to `.nhwc`, when an op converts the activation in place.
    public private(set) var layout: Layout
    private(set) var storage: PooledBuffer

    init(shape: Shape4, layout: Layout = .nhwc, pool: BufferPool) {
        precondition(layout != .nChw16c || shape.c % 16 == 0, "nChw16c needs channels in blocks of 16, not \(shape.c)")
        self.shape = shape
        self.layout = layout
        self.storage = pool.take(shape.count)
    }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// Converts an nChw16c activation to NHWC in place: a new buffer from `pool`, the old one given
    /// back. Everyone holding the activation then sees NHWC. An activation belongs to one forward
    /// pass, which runs on one thread, so no lock.
    func convertToNHWC(pool: BufferPool, threads: Int) {
        guard layout == .nChw16c else { return }
        let converted = pool.take(shape.count)
        nChw16cToNHWC(storage.pointer, converted.pointer, shape, threads: threads)
        storage = converted
        layout = .nhwc
    }
}

/// (N, C/16, H, W, 16) → (N, H, W, C), C a multiple of 16.
func nChw16cToNHWC(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ s: Shape4, threads: Int) {
    let blocks = s.c / 16, plane = s.h * s.w
    parallelRun(threads: s.count >= 1 << 16 ? threads : 1) { index, count in
        for row in chunk(s.n * s.h, index, count) {
            let n = row / s.h, y0 = row % s.h
            for block in 0..<blocks {
                let source = x + ((n * blocks + block) * plane + y0 * s.w) * 16
                let target = y + row * s.w * s.c + block * 16
                for xx in 0..<s.w { (target + xx * s.c).update(from: source + xx * 16, count: 16) }
            }
        }
    }
}

/// (N, H, W, C) → (N, C/16, H, W, 16), C a multiple of 16; or into channel blocks
/// `firstBlock ..< firstBlock + C/16` of an nChw16c image of `imageBlocks` blocks (a concatenation).
func nhwcToNChw16c(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ s: Shape4,
                   imageBlocks: Int? = nil, firstBlock: Int = 0, threads: Int) {
    let blocks = s.c / 16, plane = s.h * s.w, total = imageBlocks ?? blocks
    parallelRun(threads: s.count >= 1 << 16 ? threads : 1) { index, count in
        for row in chunk(s.n * s.h, index, count) {
            let n = row / s.h, y0 = row % s.h
            for block in 0..<blocks {
                let target = y + ((n * total + firstBlock + block) * plane + y0 * s.w) * 16
                let source = x + row * s.w * s.c + block * 16
                for xx in 0..<s.w { (target + xx * 16).update(from: source + xx * s.c, count: 16) }
            }
        }
    }
}

/// A buffer that gives itself back when the last activation using it goes away: to its pool,
/// to the arena it lives in, or (taken while a pass was recorded) to the allocator.
final class PooledBuffer {
    enum Origin {
        case pool(BufferPool)
        case arena(ActivationArena, index: Int)
        case recording(ArenaRecorder, index: Int)
    }
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    private let origin: Origin

    fileprivate init(pointer: UnsafeMutablePointer<Float>, count: Int, origin: Origin) {
        self.pointer = pointer
        self.count = count
        self.origin = origin
    }

    deinit {
        switch origin {
        case .pool(let pool): pool.recycle(pointer, count: count)
        case .arena(let arena, let index):
            ActivationMeter.current?.returned(count * MemoryLayout<Float>.stride)
            arena.release(index)
        case .recording(let recorder, let index):
            ActivationMeter.current?.returned(count * MemoryLayout<Float>.stride)
            PageMemory.unmap(UnsafeMutableRawPointer(pointer), count * MemoryLayout<Float>.stride)
            recorder.released(index)
        }
    }
}

/// Recycles activation buffers by size, so a tile after the first allocates nothing and touches
/// no fresh pages (a 512² DeepLabV3+ tile moves ~200 MB through activations; fresh pages cost a
/// page fault each). Thread-safe; keeps at most `limitBytes` idle.
final class BufferPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var idleBytes = 0
    let limitBytes: Int

    init(limitBytes: Int = 1 << 30) {
        self.limitBytes = limitBytes
    }

    deinit {
        for buffers in idle.values {
            for pointer in buffers { pointer.deallocate() }
        }
    }

    /// A buffer of exactly `count` floats (uninitialised): from the arena serving this thread's
    /// pass when it has one for this buffer (`FastBackend.withActivationArena`), else from here.
    func take(_ count: Int) -> PooledBuffer {
        ActivationMeter.current?.taken(count * MemoryLayout<Float>.stride)
        switch ArenaBinding.current {
        case .arena(let arena)?:
            if let (pointer, index) = arena.take(count) {
                return PooledBuffer(pointer: pointer, count: count, origin: .arena(arena, index: index))
            }
        case .recording(let recorder)?:
            let pointer = PageMemory.map(count * MemoryLayout<Float>.stride)
                .bindMemory(to: Float.self, capacity: max(count, 1))
            return PooledBuffer(pointer: pointer, count: count, origin: .recording(recorder, index: recorder.taken(count)))
        case nil: break
        }
        let reused: UnsafeMutablePointer<Float>? = lock.withLock {
            guard let pointer = idle[count]?.popLast() else { return nil }
            idleBytes -= count * MemoryLayout<Float>.stride
            return pointer
        }
        let pointer = reused ?? UnsafeMutableRawPointer
            .allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(count, 1))
        return PooledBuffer(pointer: pointer, count: count, origin: .pool(self))
    }

    /// Bytes of the buffers waiting here to be reused.
    var idleBytesHeld: Int { lock.withLock { idleBytes } }

    fileprivate func recycle(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        ActivationMeter.current?.returned(bytes)
        let kept: Bool = lock.withLock {
            guard idleBytes + bytes <= limitBytes else { return false }
            idle[count, default: []].append(pointer)
            idleBytes += bytes
            return true
        }
        if !kept { pointer.deallocate() }
    }
}

/// Counts the activation bytes live on the calling thread while `measure` runs: the most held at
/// once by one forward pass. A property of the network and the input size only (not of the CPU, the
/// thread count or other threads' work), so every shard of a job derives the same block layout.
final class ActivationMeter {
    private var live = 0
    private(set) var peak = 0
    private static let key = "aerialseg.activation-meter"

    /// Meters measuring anywhere now: while none is, `current` costs one atomic load instead of a
    /// thread-dictionary lookup on every buffer taken and returned (the forward pass's hot path).
    private static let active = Atomic<Int>(0)

    /// The meter of the calling thread, while one is measuring.
    static var current: ActivationMeter? {
        guard active.load(ordering: .relaxed) > 0 else { return nil }
        return Thread.current.threadDictionary[key] as? ActivationMeter
    }

    func taken(_ bytes: Int) {
        live += bytes
        peak = max(peak, live)
    }

    func returned(_ bytes: Int) { live -= bytes }

    /// Runs `body` with a meter on this thread; returns the peak live bytes.
    static func measure(_ body: () throws -> Void) rethrows -> Int {
        let meter = ActivationMeter()
        Thread.current.threadDictionary[key] = meter
        active.add(1, ordering: .relaxed)
        defer {
            active.subtract(1, ordering: .relaxed)
            Thread.current.threadDictionary.removeObject(forKey: key)
        }
        try body()
        return meter.peak
    }
}
