/// A value produced by the pickle interpreter.
///
/// Containers live in a `PickleArena` and are referred to by index, so values are flat: a deeply
/// nested or cyclic pickle can neither overflow the stack on deallocation nor loop a traversal.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits: little-endian two's-complement bytes (pickle LONG1/LONG4).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// An allowlisted Python global, never resolved to anything executable.
    case global(module: String, name: String)
    case tuple(Int)
    case list(Int)
    case dict(Int)
    /// An opaque instance (NEWOBJ, or REDUCE of an allowlisted class): kept only to be skipped.
    case object(Int)
    case tensor(Int)
    case storage(StorageRef)

    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .global(let m, let n): return "global \(m).\(n)"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .object: return "object"
        case .tensor: return "tensor"
        case .storage: return "storage"
        }
    }
}

/// A torch storage named by a persistent id: `('storage', <Type>Storage, key, location, numel[, view])`.
struct StorageRef {
    /// The storage record (`data/<key>` in a zip, the legacy key otherwise).
    var key: String
    var dtype: DType
    /// Element count the pickle declares for the root storage.
    var numel: Int
    /// Legacy storage views: first element of the view inside the root storage (0 otherwise).
    var viewOffset: Int = 0
    /// Legacy storage views: the view's length, nil for the whole storage.
    var viewCount: Int? = nil
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`: a strided view of a storage.
struct TensorRecord {
    var storage: StorageRef
    /// Offsets and strides count elements, not bytes.
    var offset: Int
    var size: [Int]
    var stride: [Int]
}

/// A dict (or OrderedDict) in insertion order; string keys are indexed for lookup.
struct PickleDict {
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    var stringIndex: [String: Int] = [:]

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key {
            if let i = stringIndex[s] {
                values[i] = value
                return
            }
            stringIndex[s] = keys.count
        }
        keys.append(key)
        values.append(value)
    }

    subscript(_ key: String) -> PickleValue? {
        stringIndex[key].map { values[$0] }
    }
}

/// An opaque Python object: which class made it and what it was given. Nothing is ever called.
struct PickleObject {
    var type: String
    var args: PickleValue
    var state: PickleValue = .none
}

/// Storage for every container the interpreter builds.
struct PickleArena {
    var tuples: [[PickleValue]] = []
    var lists: [[PickleValue]] = []
    var dicts: [PickleDict] = []
    var objects: [PickleObject] = []
    var tensors: [TensorRecord] = []

    /// Total containers built, checked against the interpreter's cap.
    var count: Int { tuples.count + lists.count + dicts.count + objects.count + tensors.count }

    /// `value[key]` when `value` is a dict with that string key.
    func lookup(_ value: PickleValue, _ key: String) -> PickleValue? {
        guard case .dict(let i) = value else { return nil }
        return dicts[i][key]
    }

    /// The items of a tuple or list (or nil for other values).
    func sequence(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case .tuple(let i): return tuples[i]
        case .list(let i): return lists[i]
        default: return nil
        }
    }

    /// The items of a tuple or list when `extract` accepts every one (nil otherwise).
    func sequence<T>(_ value: PickleValue, of extract: (PickleValue) -> T?) -> [T]? {
        guard let items = sequence(value) else { return nil }
        var out: [T] = []
        for item in items {
            guard let v = extract(item) else { return nil }
            out.append(v)
        }
        return out
    }

    func strings(_ value: PickleValue) -> [String]? {
        sequence(value) { item -> String? in
            guard case .string(let s) = item else { return nil }
            return s
        }
    }

    func ints(_ value: PickleValue) -> [Int]? {
        sequence(value) { item -> Int? in
            guard case .int(let v) = item else { return nil }
            return v
        }
    }
}
