/// A value of an mmengine config: what the Python literal subset of a config file evaluates to.
///
/// Lists and tuples stay apart (mmseg writes `out_indices=(0, 1, 2, 3)` but `mean=[...]`), and
/// dicts keep their keys in the order written, as Python's do.
public enum ConfigValue: Sendable, Equatable {
    /// Python's `None`.
    case none
    case bool(Bool)
    /// A Python int that fits in 64 bits (larger ones are refused when read).
    case int(Int)
    case float(Double)
    case string(String)
    /// `[...]`
    case list([ConfigValue])
    /// `(...)`
    case tuple([ConfigValue])
    /// `dict(...)` or `{'key': ...}`
    case dict(ConfigDict)

    /// The dict, or nil for any other kind of value.
    public var dict: ConfigDict? {
        if case .dict(let dict) = self { return dict }
        return nil
    }

    /// The items of a list or a tuple, or nil for any other kind of value.
    public var items: [ConfigValue]? {
        switch self {
        case .list(let items), .tuple(let items): return items
        default: return nil
        }
    }

    /// The value's kind in Python's words, for error messages.
    public var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .list: return "a list"
        case .tuple: return "a tuple"
        case .dict: return "a dict"
        }
    }
}

/// A dict with string keys in insertion order (Python's `dict`; mmengine's `ConfigDict`).
public struct ConfigDict: Sendable, Equatable, Sequence {
    /// The keys and values in insertion order.
    public private(set) var entries: [(key: String, value: ConfigValue)] = []
    /// Key → position in `entries`, so that building a dict of n keys takes O(n).
    private var positions: [String: Int] = [:]

    /// An empty dict.
    public init() {}

    /// A dict of `entries` in order; a repeated key keeps its first position and its last value.
    public init(_ entries: [(key: String, value: ConfigValue)]) {
        for (key, value) in entries { self[key] = value }
    }

    /// The value under `key`; setting an existing key keeps its position, a new key goes last,
    /// and setting nil removes the key.
    public subscript(key: String) -> ConfigValue? {
        get { positions[key].map { entries[$0].value } }
        set {
            switch (positions[key], newValue) {
            case (let index?, let value?):
                entries[index].value = value
            case (let index?, nil):
                entries.remove(at: index)
                positions[key] = nil
                for (position, entry) in entries.enumerated().dropFirst(index) { positions[entry.key] = position }
            case (nil, let value?):
                positions[key] = entries.count
                entries.append((key, value))
            case (nil, nil):
                break
            }
        }
    }

    /// The keys in insertion order.
    public var keys: [String] { entries.map(\.key) }
    public var isEmpty: Bool { entries.isEmpty }

    /// Follows a dotted path of keys (`model.decode_head.num_classes`); nil where one is missing.
    public func value(at path: [String]) -> ConfigValue? {
        guard let first = path.first, let value = self[first] else { return nil }
        if path.count == 1 { return value }
        return value.dict?.value(at: Array(path.dropFirst()))
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: ConfigValue)]> { entries.makeIterator() }

    public static func == (lhs: ConfigDict, rhs: ConfigDict) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

/// How deep and how large a value is: the reader refuses values past `ConfigLimits`, so a hostile
/// file cannot make later recursive walks (merging, decoding) overflow the stack or run for ever.
struct ValueSize {
    var depth: Int
    var count: Int

    static let scalar = ValueSize(depth: 0, count: 1)

    /// The size of a container holding `children`.
    static func container(_ children: [ValueSize]) -> ValueSize {
        ValueSize(depth: 1 + (children.map(\.depth).max() ?? 0), count: 1 + children.reduce(0) { $0 + $1.count })
    }

    /// Measures `value`, stopping early once it is past the limits (the result then exceeds them).
    static func of(_ value: ConfigValue, limits: ConfigLimits = .standard) -> ValueSize {
        var count = 0
        var deepest = 0
        var stack: [(ConfigValue, Int)] = [(value, 0)]
        while let (value, depth) = stack.popLast() {
            count += 1
            deepest = max(deepest, depth)
            if count > limits.maxValueCount || deepest > limits.maxValueDepth { break }
            switch value {
            case .list(let items), .tuple(let items): stack += items.map { ($0, depth + 1) }
            case .dict(let dict): stack += dict.entries.map { ($0.value, depth + 1) }
            default: break
            }
        }
        return ValueSize(depth: deepest, count: count)
    }
}

/// Bounds on what the config reader accepts, so hostile input fails with a message instead of
/// exhausting memory, time or the stack.
struct ConfigLimits: Sendable {
    /// Largest config file, in bytes (real mmseg configs are a few KiB; pretty_text ~10 KiB).
    var maxFileBytes = 1 << 20
    /// Deepest bracket nesting in an expression (mmseg configs nest about 6 levels).
    var maxNesting = 64
    /// Deepest nesting of a value, also through variables (`a = [b]`).
    var maxValueDepth = 64
    /// Most nodes in one value (scalars and containers).
    var maxValueCount = 1 << 20
    /// Longest chain of `_base_` files.
    var maxBaseDepth = 16
    /// Most files read for one config (a file may be a base of several others).
    var maxFiles = 256

    static let standard = ConfigLimits()
}
