import Foundation

/// How much memory one run of AerialSeg may plan to use, and the one check against it.
///
/// Every size that comes from user input (a class count, a crop or tile size, a raster's width from
/// its header) is turned into the bytes it would allocate and checked here *before* allocating, so
/// a wild value fails with one line saying what needed how much, instead of an abort in the
/// allocator. The budget is `AERIALSEG_MEMORY_BUDGET` when set (bytes, or with a `K`, `M`, `G` or
/// `T` suffix, powers of 1024), else ¾ of the memory this process may use (the smaller of physical
/// memory and a cgroup v2 `memory.max`).
public struct MemoryBudget: Sendable, Equatable, CustomStringConvertible {
    /// The budget in bytes.
    public var bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    /// The environment variable that overrides the default budget.
    public static let environmentKey = "AERIALSEG_MEMORY_BUDGET"

    /// The budget in force: `AERIALSEG_MEMORY_BUDGET`, else ¾ of the available memory.
    public static var current: MemoryBudget {
        if let text = ProcessInfo.processInfo.environment[environmentKey], let bytes = parse(text) {
            return MemoryBudget(bytes: bytes)
        }
        return MemoryBudget(bytes: availableMemory() / 4 * 3)
    }

    /// Throws `MemoryBudgetError` when `needed` bytes exceed the budget.
    /// - Parameters:
    ///   - what: what would be allocated, e.g. "a 16384² crop through the model".
    ///   - path: the file or option the size came from (the start of the error line).
    ///   - hint: what to do instead, e.g. "use --crop 1024 or less".
    public func check(_ needed: Int, for what: String, path: String, hint: String) throws {
        guard needed > bytes else { return }
        throw MemoryBudgetError(path: path, what: what, needed: needed, budget: bytes, hint: hint)
    }

    /// `a × b × ...` in bytes, saturating at `Int.max` instead of trapping (sizes from user input
    /// may overflow). Negative factors count as 0.
    public static func product(_ factors: Int...) -> Int {
        var result = 1
        for factor in factors {
            let (value, overflow) = result.multipliedReportingOverflow(by: max(factor, 0))
            if overflow { return Int.max }
            result = value
        }
        return result
    }

    /// `a + b + ...`, saturating at `Int.max`.
    public static func sum(_ terms: Int...) -> Int {
        var result = 0
        for term in terms {
            let (value, overflow) = result.addingReportingOverflow(max(term, 0))
            if overflow { return Int.max }
            result = value
        }
        return result
    }

    /// "1.5 GiB", "640 MiB", "12 KiB", "100 B".
    public static func format(_ bytes: Int) -> String {
        if bytes == Int.max { return "more than 8 EiB" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    public var description: String { Self.format(bytes) }

    /// `4G`, `512M`, `100000` → bytes; nil for anything else.
    static func parse(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        if let last = t.last, let shift = shifts[last], let value = Int(t.dropLast()), value > 0 {
            return product(value, 1 << shift)
        }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }

    /// Physical memory, or the cgroup v2 limit when that is smaller.
    static func availableMemory() -> Int {
        let physical = product(sysconf(Int32(_SC_PHYS_PAGES)), sysconf(Int32(_SC_PAGESIZE)))
        let limit = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }  // "max" → nil: no limit
        return min(physical, limit ?? Int.max)
    }
}

/// An allocation refused up front. Description: `<file>: <what> needs N, more than the memory
/// budget of M (<hint>; ...)`, the line `aerialseg: error:` prints.
public struct MemoryBudgetError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let what: String
    public let needed: Int
    public let budget: Int
    public let hint: String

    public var description: String {
        "\(path): \(what) needs \(MemoryBudget.format(needed)), more than the memory budget of "
            + "\(MemoryBudget.format(budget)) (\(hint); the budget is \(MemoryBudget.environmentKey), "
            + "default ¾ of RAM)"
    }
}
