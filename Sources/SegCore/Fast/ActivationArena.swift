import Foundation
import Synchronization

/// Activation memory for forward passes of one kind (one network at one input size): a single
/// block, laid out from the buffers the first such pass took, and reused by every later pass.
///
/// The pool (`BufferPool`) keeps one buffer per size and use, so after a pass it holds every
/// size the pass ever needed at once: 307 MiB for FCN R-50 at 512², half of it the 150-class
/// logits, which could reuse the backbone's memory. The arena gives each buffer of the pass an
/// offset chosen when the first pass ended, so buffers that are never live together share bytes;
/// the block is about the pass's peak of live activations.
///
/// The layout is a plan, not a promise: a later pass gets buffer k at offset k only if it asks
/// for the same size as the first pass's k-th buffer, and only if no buffer it still holds from
/// the arena overlaps those bytes. Otherwise that buffer comes from the pool. A pass that takes
/// its buffers in another order is slower to place, never wrong.
final class ActivationArena {
    /// Offsets in bytes (64-byte aligned) and sizes in floats, in the order the first pass took them.
    private let offsets: [Int]
    private let counts: [Int]
    let bytes: Int
    private let base: UnsafeMutableRawPointer
    private let lock = NSLock()
    /// The buffer the pass takes next, and the byte ranges of the arena's buffers still held.
    private var next = 0
    private var live: [Int: Range<Int>] = [:]

    /// Lays out the buffers a recorded pass took (`layout`).
    init(_ recorder: ArenaRecorder) {
        let buffers = recorder.buffers
        let (offsets, bytes) = Self.layout(buffers)
        self.offsets = offsets
        counts = buffers.map { $0.bytes / MemoryLayout<Float>.stride }
        self.bytes = bytes
        base = PageMemory.map(bytes)
    }

    /// Offsets (64-byte aligned) for `buffers` such that two buffers live at the same time never
    /// share a byte, and the block's size. Each buffer in turn goes at the lowest offset where it
    /// overlaps no placed buffer live at the same time; two orders are tried and the smaller block
    /// kept: the largest first, and the largest bytes × lifetime first (which packs a decoder's
    /// short-lived large maps around the long-lived skip connections: DeepLabV3+ at 512², 53 MiB
    /// largest-first against its 46 MiB live peak; bytes × lifetime reaches the peak there and on
    /// FCN and FastFCN, where largest-first does too).
    static func layout(_ buffers: [ArenaRecorder.Buffer]) -> (offsets: [Int], bytes: Int) {
        let passEnd = (buffers.map { max($0.start, $0.end ?? 0) }.max() ?? 0) + 1
        func life(_ b: ArenaRecorder.Buffer) -> Range<Int> { b.start..<(b.end ?? passEnd) }
        func place(_ order: [Int]) -> (offsets: [Int], bytes: Int) {
            var offsets = [Int](repeating: 0, count: buffers.count)
            var placed: [(range: Range<Int>, life: Range<Int>)] = []
            for index in order {
                let buffer = buffers[index], span = life(buffer)
                let blockers = placed.filter { $0.life.overlaps(span) }.map(\.range).sorted { $0.lowerBound < $1.lowerBound }
                var offset = 0
                for range in blockers where range.overlaps(offset..<(offset + buffer.bytes)) {
                    offset = max(offset, (range.upperBound + 63) / 64 * 64)
                }
                offsets[index] = offset
                placed.append((offset..<(offset + buffer.bytes), span))
            }
            return (offsets, max(placed.map(\.range.upperBound).max() ?? 0, 64))
        }
        let largest = buffers.indices.sorted { (buffers[$0].bytes, $1) > (buffers[$1].bytes, $0) }
        let area = { (i: Int) in buffers[i].bytes * life(buffers[i]).count }
        let largestArea = buffers.indices.sorted { (area($0), $1) > (area($1), $0) }
        let first = place(largest), second = place(largestArea)
        return second.bytes < first.bytes ? second : first
    }

    deinit { PageMemory.unmap(base, bytes) }

    /// Starts a pass: its first buffer is the plan's first.
    func begin() { lock.withLock { next = 0 } }

    /// The arena's bytes for the pass's next buffer of `count` floats, with its index for
    /// `release`; nil when the plan has no such buffer there or its bytes are still in use.
    func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, index: Int)? {
        lock.withLock {
            let index = next
            next += 1
            guard index < counts.count, counts[index] == count else { return nil }
            let range = offsets[index]..<(offsets[index] + count * MemoryLayout<Float>.stride)
            guard live[index] == nil, !live.values.contains(where: { $0.overlaps(range) }) else { return nil }
            live[index] = range
            return ((base + offsets[index]).assumingMemoryBound(to: Float.self), index)
        }
    }

    func release(_ index: Int) { lock.withLock { live[index] = nil } }
}

/// The buffers one pass took, in order, with when each was taken and given back (counted in
/// takes and releases), for `ActivationArena` to lay out. The pass's own buffers are fresh pages
/// (`PageMemory`), unmapped when released, so recording leaves nothing behind: not in the pool,
/// and not in glibc's heap, which keeps freed chunks below its mmap threshold (raised to 32 MiB
/// by the first large free) for later and would hold them next to the arena.
final class ArenaRecorder {
    struct Buffer {
        var bytes: Int
        var start: Int
        /// nil while held (a buffer still held when the pass ends keeps its bytes for good).
        var end: Int?
    }
    private let lock = NSLock()
    private var clock = 0
    private var recorded: [Buffer] = []

    var buffers: [Buffer] { lock.withLock { recorded } }

    func taken(_ count: Int) -> Int {
        lock.withLock {
            clock += 1
            recorded.append(Buffer(bytes: count * MemoryLayout<Float>.stride, start: clock))
            return recorded.count - 1
        }
    }

    func released(_ index: Int) {
        lock.withLock {
            clock += 1
            recorded[index].end = clock
        }
    }
}

/// Anonymous pages straight from the kernel, given back at once when unmapped.
enum PageMemory {
    static func map(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let pointer = mmap(nil, max(bytes, 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              pointer != MAP_FAILED else {
            fatalError("out of memory: mmap of \(bytes) bytes for activations failed")
        }
        return pointer
    }

    static func unmap(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) { munmap(pointer, max(bytes, 1)) }
}

/// The arena or recorder serving the calling thread's pass, if any (`FastBackend.withActivationArena`).
enum ArenaBinding {
    case arena(ActivationArena)
    case recording(ArenaRecorder)

    private static let key = "aerialseg.activation-arena"
    /// Passes bound anywhere now: while none is, `current` costs one atomic load.
    private static let active = Atomic<Int>(0)

    static var current: ArenaBinding? {
        guard active.load(ordering: .relaxed) > 0 else { return nil }
        return (Thread.current.threadDictionary[key] as? Box)?.binding
    }

    private final class Box {
        let binding: ArenaBinding
        init(_ binding: ArenaBinding) { self.binding = binding }
    }

    /// Runs `body` with `self` serving this thread's activation buffers.
    func bind<T>(_ body: () throws -> T) rethrows -> T {
        Thread.current.threadDictionary[Self.key] = Box(self)
        Self.active.add(1, ordering: .relaxed)
        defer {
            Self.active.subtract(1, ordering: .relaxed)
            Thread.current.threadDictionary.removeObject(forKey: Self.key)
        }
        return try body()
    }
}

/// Idle arenas by pass kind, most recently used last; at most `limitBytes` kept.
final class ArenaCache: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [(key: String, arena: ActivationArena)] = []
    let limitBytes: Int

    init(limitBytes: Int = 1 << 30) { self.limitBytes = limitBytes }

    /// An idle arena for `key`, now in use by the caller; nil if none is idle.
    func checkOut(_ key: String) -> ActivationArena? {
        lock.withLock {
            guard let index = idle.lastIndex(where: { $0.key == key }) else { return nil }
            return idle.remove(at: index).arena
        }
    }

    /// Gives `arena` back; the least recently used arenas go while more than `limitBytes` is idle.
    func checkIn(_ key: String, _ arena: ActivationArena) {
        lock.withLock {
            idle.append((key, arena))
            var total = idle.reduce(0) { $0 + $1.arena.bytes }
            while total > limitBytes, idle.count > 1 {
                total -= idle.removeFirst().arena.bytes
            }
        }
    }

    /// Bytes held by idle arenas.
    var idleBytes: Int { lock.withLock { idle.reduce(0) { $0 + $1.arena.bytes } } }
}
