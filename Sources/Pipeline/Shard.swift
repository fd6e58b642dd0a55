/// One of `count` processes sharing a job: `--shard I/N`, 0-based (`0/3`, `1/3`, `2/3`), as Slurm's
/// `SLURM_ARRAY_TASK_ID` is with `--array=0-2` and Kubernetes' `JOB_COMPLETION_INDEX` always is.
///
/// The blocks of all inputs are numbered in input order, then row-major within each input; shard I
/// takes the blocks whose number ≡ I (mod N). Round-robin rather than contiguous ranges: neighbouring
/// blocks cost alike (empty nodata areas, narrow edge blocks and small inputs come in runs), so
/// interleaving spreads both cheap and expensive runs over all shards.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The whole job in one process.
    public static let all = Shard(validIndex: 0, count: 1)

    private init(validIndex: Int, count: Int) {
        index = validIndex
        self.count = count
    }

    /// Throws `ShardError` unless `0 <= index < count`.
    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw ShardError("shard count \(count) is less than 1 (give I/N with N ≥ 1)") }
        guard index >= 0, index < count else {
            throw ShardError("shard index \(index) is not in 0...\(count - 1) (shards are 0-based: 0/\(count) "
                             + "to \(count - 1)/\(count))")
        }
        self.init(validIndex: index, count: count)
    }

    /// `I/N` (0-based), or `auto`: from the scheduler's environment (`fromEnvironment`).
    public init(parsing text: String, environment: [String: String]) throws {
        if text == "auto" {
            self = try Self.fromEnvironment(environment)
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError("--shard \(text): not a shard (give I/N, 0-based, e.g. 0/4, or auto)")
        }
        do { try self.init(index: i, count: n) } catch let error as ShardError {
            throw ShardError("--shard \(text): \(error.message)")
        }
    }

    /// The environment variables `--shard auto` reads, in the order tried.
    public static let environmentKeys = ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN",
                                         "SLURM_ARRAY_TASK_MAX", "JOB_COMPLETION_INDEX", "AERIALSEG_SHARD_COUNT"]

    /// Slurm: `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT` (index = ID − `SLURM_ARRAY_TASK_MIN`,
    /// 0 when unset, so `--array=1-4` works too), or with `SLURM_ARRAY_TASK_MIN`/`MAX` alone.
    /// Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` with `AERIALSEG_SHARD_COUNT` (set it to the
    /// Job's `completions`). Throws naming the variable that is missing or not a number.
    public static func fromEnvironment(_ environment: [String: String]) throws -> Shard {
        func number(_ key: String) throws -> Int? {
            guard let text = environment[key], !text.isEmpty else { return nil }  // exported empty: unset
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ShardError("--shard auto: \(key)=\(text) is not a number")
            }
            return value
        }
        if let id = try number("SLURM_ARRAY_TASK_ID") {
            let min = try number("SLURM_ARRAY_TASK_MIN") ?? 0
            let count: Int
            if let n = try number("SLURM_ARRAY_TASK_COUNT") {
                count = n
            } else if let max = try number("SLURM_ARRAY_TASK_MAX") {
                count = max - min + 1
            } else {
                throw ShardError("--shard auto: SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT "
                                 + "(run it as an sbatch --array job, or give --shard I/N)")
            }
            do { return try Shard(index: id - min, count: count) } catch let error as ShardError {
                throw ShardError("--shard auto: SLURM_ARRAY_TASK_ID \(id) (minus SLURM_ARRAY_TASK_MIN \(min)): "
                                 + error.message)
            }
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let count = try number("AERIALSEG_SHARD_COUNT") else {
                throw ShardError("--shard auto: JOB_COMPLETION_INDEX is set but not AERIALSEG_SHARD_COUNT "
                                 + "(set it to the Job's completions)")
            }
            do { return try Shard(index: index, count: count) } catch let error as ShardError {
                throw ShardError("--shard auto: JOB_COMPLETION_INDEX \(index): \(error.message)")
            }
        }
        throw ShardError("--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set "
                         + "(run it as a Slurm array or a Kubernetes Indexed Job, or give --shard I/N)")
    }

    /// For each input (given its block count), the block indices this shard runs.
    public func blocks(ofInputs counts: [Int]) -> [[Int]] {
        var first = 0
        return counts.map { n in
            defer { first += n }
            return (0..<n).filter { (first + $0) % count == index }
        }
    }

    public var description: String { "\(index)/\(count)" }
}

/// A `--shard` value or environment that cannot be used.
public struct ShardError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
