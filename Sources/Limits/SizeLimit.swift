/// A size from user input that is beyond what AerialSeg allows, found before anything is allocated.
///
/// Description: `<file or option>: <what> <value> is more than <limit> (<would need N>; <hint>)`,
/// the line `aerialseg: error:` prints.
public struct SizeLimitError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file or option the value came from.
    public let path: String
    /// What the value is, e.g. "num_classes", "--size".
    public let what: String
    public let value: Int
    /// The largest value allowed.
    public let limit: Int
    /// Why the limit is what it is, or what the value would need (e.g. "a 100000² matrix needs 75 GiB").
    public let reason: String
    public let hint: String

    public init(path: String, what: String, value: Int, limit: Int, reason: String, hint: String) {
        self.path = path
        self.what = what
        self.value = value
        self.limit = limit
        self.reason = reason
        self.hint = hint
    }

    /// Throws unless `value` is at most `limit`.
    public static func check(_ value: Int, atMost limit: Int, what: String, path: String, reason: String,
                             hint: String) throws {
        guard value > limit else { return }
        throw SizeLimitError(path: path, what: what, value: value, limit: limit, reason: reason, hint: hint)
    }

    public var description: String {
        "\(path): \(what) \(value) is more than \(limit) (\(reason); \(hint))"
    }
}
