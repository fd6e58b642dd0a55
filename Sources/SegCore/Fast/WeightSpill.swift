import Foundation

/// Exact copies of weights that are needed again only when a new input size asks for a new
/// layout, kept in a temporary file instead of memory.
///
/// A Winograd convolution's packed weights (4× its parameters, in the Winograd domain) and a bf16
/// layer's cannot give back the original values, so each such layer used to keep its OIHW copy
/// for the day an edge window or another scale needs a new primitive: 110 MiB for FCN R-50. Here
/// that copy is written once to a file that is unlinked as soon as it is open (nobody else can
/// see or change it, and it goes with the process), and read back with `pread` when needed.
/// On a disk, the page cache may hold it for a while as clean, reclaimable pages outside the
/// process; where `TMPDIR` is a tmpfs (common in containers) the file is in RAM, outside the
/// process's RSS but counted by its cgroup: point `TMPDIR` at a disk there.
///
/// Where no file can be made or written (a read-only or full temporary directory), the weights
/// stay in memory: the answer is the same, only the memory differs (`heldBytes` reports both).
final class WeightSpill {
    /// Where one copy is: its first byte in the file and its count of floats.
    struct Extent: Sendable {
        let offset: Int
        let count: Int
    }

    private let descriptor: Int32
    private let lock = NSLock()
    private var end = 0

    /// Opens an unlinked file in `directory` (default: `TMPDIR`, else /tmp); nil where it cannot.
    init?(directory: String? = nil) {
        let folder = directory ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "/tmp"
        var template = Array("\(folder)/aerialseg-weights-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Bytes written so far.
    var bytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return end
    }

    /// Appends `values`; nil where the file cannot take them (then the caller keeps them).
    func write(_ values: [Float]) -> Extent? {
        lock.lock()
        defer { lock.unlock() }
        let offset = end
        guard !values.isEmpty else { return Extent(offset: offset, count: 0) }
        let complete = values.withUnsafeBytes { raw in
            Self.transfer(raw.count) { done in pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset + done)) }
        }
        guard complete else { return nil }
        end += values.count * MemoryLayout<Float>.stride
        return Extent(offset: offset, count: values.count)
    }

    /// The values written at `extent`, bit for bit; nil on a failed read (an I/O error).
    func read(_ extent: Extent) -> [Float]? {
        var values = [Float](repeating: 0, count: extent.count)
        guard extent.count > 0 else { return values }
        let complete = values.withUnsafeMutableBytes { raw in
            Self.transfer(raw.count) { done in pread(descriptor, raw.baseAddress! + done, raw.count - done, off_t(extent.offset + done)) }
        }
        return complete ? values : nil
    }

    /// Runs a positional read or write until `count` bytes have moved; false on an error or EOF.
    private static func transfer(_ count: Int, _ step: (Int) -> Int) -> Bool {
        var done = 0
        while done < count {
            let moved = step(done)
            if moved < 0 && errno == EINTR { continue }
            guard moved > 0 else { return false }
            done += moved
        }
        return true
    }
}
