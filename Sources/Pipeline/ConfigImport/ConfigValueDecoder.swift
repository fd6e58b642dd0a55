/// Decodes `Decodable` types (e.g. `ModelConfig`) straight from config values, with the same
/// snake_case keys the YAML pipeline files use, so a model dict is transcribed field by field with
/// no detour through text. Unknown keys are ignored; kinds are strict (an int is not a string; a
/// float field takes an int, as Python would).
struct ConfigValueDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from value: ConfigValue, at path: [String]) throws -> T {
        try T(from: ValueDecoder(value: value, codingPath: path.map(Key.init)))
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) { stringValue = "[\(intValue)]"; self.intValue = intValue }
    }
}

private struct ValueDecoder: Decoder {
    let value: ConfigValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
        guard let dict = value.dict else { throw mismatch(codingPath, "a dict", value) }
        return KeyedDecodingContainer(KeyedContainer<K>(dict: dict, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let items = value.items else { throw mismatch(codingPath, "a list", value) }
        return UnkeyedContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleContainer(value: value, codingPath: codingPath)
    }
}

private func mismatch(_ path: [any CodingKey], _ expected: String, _ found: ConfigValue) -> DecodingError {
    .typeMismatch(Any.self, .init(codingPath: path, debugDescription: "expected \(expected), found \(found.kindName)"))
}

/// Decodes scalars; shared by the three containers.
private func decodeScalar<T: Decodable>(_ type: T.Type, _ value: ConfigValue, _ path: [any CodingKey]) throws -> T {
    switch (type, value) {
    case (is Bool.Type, .bool(let bool)): return bool as! T
    case (is Int.Type, .int(let int)): return int as! T
    case (is Double.Type, .float(let double)): return double as! T
    case (is Double.Type, .int(let int)): return Double(int) as! T
    case (is String.Type, .string(let string)): return string as! T
    case (is Bool.Type, _): throw mismatch(path, "a bool", value)
    case (is Int.Type, _): throw mismatch(path, "an int", value)
    case (is Double.Type, _): throw mismatch(path, "a number", value)
    case (is String.Type, _): throw mismatch(path, "a string", value)
    case (is any FixedWidthInteger.Type, _), (is Float.Type, _):
        throw DecodingError.typeMismatch(T.self, .init(codingPath: path, debugDescription: "unsupported field type"))
    default: return try T(from: ValueDecoder(value: value, codingPath: path))
    }
}

private struct KeyedContainer<K: CodingKey>: KeyedDecodingContainerProtocol {
    let dict: ConfigDict
    let codingPath: [any CodingKey]
    var allKeys: [K] { dict.keys.compactMap { K(stringValue: $0) } }

    func contains(_ key: K) -> Bool { dict[key.stringValue] != nil }

    /// Python's None reads as an absent optional.
    func decodeNil(forKey key: K) throws -> Bool { dict[key.stringValue] == ConfigValue.none }

    func decode<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T { try decode(type, key) }
    func decode(_ type: Bool.Type, forKey key: K) throws -> Bool { try decode(type as Bool.Type, key) }
    func decode(_ type: String.Type, forKey key: K) throws -> String { try decode(type as String.Type, key) }
    func decode(_ type: Double.Type, forKey key: K) throws -> Double { try decode(type as Double.Type, key) }
    func decode(_ type: Float.Type, forKey key: K) throws -> Float { try decode(type as Float.Type, key) }
    func decode(_ type: Int.Type, forKey key: K) throws -> Int { try decode(type as Int.Type, key) }
    func decode(_ type: Int8.Type, forKey key: K) throws -> Int8 { try decode(type as Int8.Type, key) }
    func decode(_ type: Int16.Type, forKey key: K) throws -> Int16 { try decode(type as Int16.Type, key) }
    func decode(_ type: Int32.Type, forKey key: K) throws -> Int32 { try decode(type as Int32.Type, key) }
    func decode(_ type: Int64.Type, forKey key: K) throws -> Int64 { try decode(type as Int64.Type, key) }
    func decode(_ type: UInt.Type, forKey key: K) throws -> UInt { try decode(type as UInt.Type, key) }
    func decode(_ type: UInt8.Type, forKey key: K) throws -> UInt8 { try decode(type as UInt8.Type, key) }
    func decode(_ type: UInt16.Type, forKey key: K) throws -> UInt16 { try decode(type as UInt16.Type, key) }
    func decode(_ type: UInt32.Type, forKey key: K) throws -> UInt32 { try decode(type as UInt32.Type, key) }
    func decode(_ type: UInt64.Type, forKey key: K) throws -> UInt64 { try decode(type as UInt64.Type, key) }

    private func decode<T: Decodable>(_ type: T.Type, _ key: K) throws -> T {
        guard let value = dict[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return try decodeScalar(type, value, codingPath + [key])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T? {
        guard let value = dict[key.stringValue], value != .none else { return nil }
        return try decodeScalar(type, value, codingPath + [key])
    }

    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: K) throws -> KeyedDecodingContainer<N> {
        try ValueDecoder(value: dict[key.stringValue] ?? .none, codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: K) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: dict[key.stringValue] ?? .none, codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ValueDecoder(value: .dict(dict), codingPath: codingPath) }
    func superDecoder(forKey key: K) throws -> any Decoder {
        ValueDecoder(value: dict[key.stringValue] ?? .none, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [ConfigValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [ConfigValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    private var path: [any CodingKey] { codingPath + [ConfigValueDecoder.Key(intValue: currentIndex)] }

    private func current() throws -> ConfigValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: path, debugDescription: "list too short"))
        }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard try current() == .none else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type) }

    private mutating func next<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try decodeScalar(type, try current(), path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
        let container = try ValueDecoder(value: try current(), codingPath: path).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try ValueDecoder(value: try current(), codingPath: path).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = ValueDecoder(value: try current(), codingPath: path)
        currentIndex += 1
        return decoder
    }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let value: ConfigValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .none }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Bool.Type) throws -> Bool { try decodeScalar(type, value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try decodeScalar(type, value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeScalar(type, value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeScalar(type, value, codingPath) }
}
