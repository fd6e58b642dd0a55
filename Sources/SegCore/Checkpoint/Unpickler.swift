/// A pickle interpreter (protocols 0–5, the opcodes torch and numpy emit) that never executes code.
///
/// It runs one pickle from `reader.position` to its STOP opcode over `PickleValue`s: globals are
/// checked against `PickleGlobals` and become inert values, REDUCE/NEWOBJ/BUILD are interpreted by
/// `PickleGlobals.call` or produce opaque objects, and persistent ids (torch storages) go to the
/// caller's `persistentLoad`. Every read is bounds-checked; stack, memo and container counts are capped.
struct Unpickler {
    static let maxStack = 1 << 22
    static let maxMarks = 1 << 20
    static let maxMemo = 1 << 22
    static let maxContainers = 1 << 24

    var reader: ByteReader
    var arena = PickleArena()
    /// Turns a persistent id (BINPERSID argument) into a value, usually `.storage`.
    let persistentLoad: (PickleValue, PickleArena) throws -> PickleValue

    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(reader: ByteReader, persistentLoad: @escaping (PickleValue, PickleArena) throws -> PickleValue) {
        self.reader = reader
        self.persistentLoad = persistentLoad
    }

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw FormatFailure("\(reader.what): pickle stack too deep") }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw FormatFailure("\(reader.what): pickle stack underflow at offset \(reader.position)")
        }
        return value
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last else {
            throw FormatFailure("\(reader.what): pickle stack is empty at offset \(reader.position)")
        }
        return value
    }

    /// Pops everything above the last MARK, and the mark.
    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else {
            throw FormatFailure("\(reader.what): pickle MARK missing at offset \(reader.position)")
        }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func checkContainers() throws {
        guard arena.count < Self.maxContainers else {
            throw FormatFailure("\(reader.what): pickle builds too many containers")
        }
    }

    private mutating func newTuple(_ items: [PickleValue]) throws -> PickleValue {
        try checkContainers()
        arena.tuples.append(items)
        return .tuple(arena.tuples.count - 1)
    }

    private mutating func newList(_ items: [PickleValue]) throws -> PickleValue {
        try checkContainers()
        arena.lists.append(items)
        return .list(arena.lists.count - 1)
    }

    private mutating func newDict() throws -> PickleValue {
        try checkContainers()
        arena.dicts.append(PickleDict())
        return .dict(arena.dicts.count - 1)
    }

    private mutating func memoize(_ index: Int) throws {
        guard index >= 0 else { throw FormatFailure("\(reader.what): negative memo index") }
        guard memo.count < Self.maxMemo || memo[index] != nil else {
            throw FormatFailure("\(reader.what): pickle memo too large")
        }
        memo[index] = try top()
    }

    private mutating func recall(_ index: Int) throws {
        guard let value = memo[index] else {
            throw FormatFailure("\(reader.what): pickle refers to memo entry \(index) that was never stored")
        }
        try push(value)
    }

    private mutating func appendItems(_ items: [PickleValue], to target: PickleValue) throws {
        switch target {
        case .list(let i): arena.lists[i].append(contentsOf: items)
        case .object: break  // list-like opaque object (e.g. a set via ADDITEMS): content is irrelevant
        default: throw FormatFailure("\(reader.what): pickle appends to a \(target.typeName)")
        }
    }

    private mutating func setItems(_ items: [PickleValue], in target: PickleValue) throws {
        guard items.count % 2 == 0 else { throw FormatFailure("\(reader.what): odd number of dict items") }
        switch target {
        case .dict(let i):
            var k = 0
            while k < items.count {
                arena.dicts[i].set(items[k], items[k + 1])
                k += 2
            }
        case .object: break
        default: throw FormatFailure("\(reader.what): pickle sets items on a \(target.typeName)")
        }
    }

    private mutating func text(_ count: Int) throws -> String {
        String(decoding: try reader.take(count), as: UTF8.self)
    }

    private mutating func length(_ raw: UInt64) throws -> Int {
        guard raw <= UInt64(reader.remaining) else {
            throw FormatFailure("\(reader.what): pickle length \(raw) exceeds the remaining \(reader.remaining) bytes")
        }
        return Int(raw)
    }

    /// Little-endian two's-complement integer of `bytes` (LONG1/LONG4).
    private func longValue(_ bytes: ArraySlice<UInt8>) -> PickleValue {
        if bytes.isEmpty { return .int(0) }
        guard bytes.count <= 8 else { return .bigInt(Array(bytes)) }
        var value: UInt64 = 0
        for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        let bits = UInt64(bytes.count * 8)
        if bits < 64, let last = bytes.last, last & 0x80 != 0 { value |= ~0 << bits }
        return .int(Int(Int64(bitPattern: value)))
    }

    private mutating func global(module: String, name: String) throws -> PickleValue {
        guard module.utf8.count <= 256, name.utf8.count <= 256 else {
            throw FormatFailure("\(reader.what): pickle global name too long")
        }
        return try PickleGlobals.resolve(module: module, name: name)
    }

    /// Runs the pickle to its STOP opcode and returns the result.
    mutating func load() throws -> PickleValue {
        while true {
            let at = reader.position
            let op = try reader.u8()
            switch op {
            case 0x80: // PROTO
                let proto = try reader.u8()
                guard proto <= 5 else { throw FormatFailure("\(reader.what): unsupported pickle protocol \(proto)") }
            case 0x95: try reader.skip(8) // FRAME (frames are just a hint)
            case 0x2E: // STOP
                let result = try pop()
                return result
            case 0x28: // MARK
                guard marks.count < Self.maxMarks else { throw FormatFailure("\(reader.what): too many MARKs") }
                marks.append(stack.count)
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: try push(try top()) // DUP
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4A: try push(.int(try reader.i32())) // BININT
            case 0x4B: try push(.int(Int(try reader.u8()))) // BININT1
            case 0x4D: try push(.int(try reader.u16())) // BININT2
            case 0x8A: // LONG1
                let n = Int(try reader.u8())
                try push(longValue(try reader.take(n)))
            case 0x8B: // LONG4
                let n = try reader.i32()
                guard n >= 0 else { throw FormatFailure("\(reader.what): negative LONG4 length") }
                try push(longValue(try reader.take(n)))
            case 0x49, 0x4C: // INT, LONG (protocol 0 text)
                var line = String(decoding: try reader.line(maxLength: 64), as: UTF8.self)
                if line.hasSuffix("L") { line.removeLast() }
                if line == "00" { try push(.bool(false)) } else if line == "01" { try push(.bool(true)) } else {
                    guard let v = Int(line) else { throw FormatFailure("\(reader.what): bad INT text at \(at)") }
                    try push(.int(v))
                }
            case 0x47: try push(.float(try reader.f64BE())) // BINFLOAT
            case 0x46: // FLOAT (text)
                let line = String(decoding: try reader.line(maxLength: 64), as: UTF8.self)
                guard let v = Double(line) else { throw FormatFailure("\(reader.what): bad FLOAT text at \(at)") }
                try push(.float(v))
            case 0x58: try push(.string(try text(try length(try reader.uintLE(4))))) // BINUNICODE
            case 0x8C: try push(.string(try text(Int(try reader.u8())))) // SHORT_BINUNICODE
            case 0x8D: try push(.string(try text(try length(try reader.u64())))) // BINUNICODE8
            case 0x54: try push(.string(try text(try length(try reader.uintLE(4))))) // BINSTRING
            case 0x55: try push(.string(try text(Int(try reader.u8())))) // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try reader.take(try length(try reader.uintLE(4)))))) // BINBYTES
            case 0x43: try push(.bytes(Array(try reader.take(Int(try reader.u8()))))) // SHORT_BINBYTES
            case 0x8E, 0x96: try push(.bytes(Array(try reader.take(try length(try reader.u64()))))) // BINBYTES8
            case 0x98: break // READONLY_BUFFER
            case 0x29: try push(try newTuple([])) // EMPTY_TUPLE
            case 0x74: try push(try newTuple(try popMark())) // TUPLE
            case 0x85: // TUPLE1
                let a = try pop()
                try push(try newTuple([a]))
            case 0x86: // TUPLE2
                let b = try pop(), a = try pop()
                try push(try newTuple([a, b]))
            case 0x87: // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(try newTuple([a, b, c]))
            case 0x5D, 0x8F: try push(try newList([])) // EMPTY_LIST, EMPTY_SET (a set is kept as a list)
            case 0x6C: try push(try newList(try popMark())) // LIST
            case 0x91: try push(try newTuple(try popMark())) // FROZENSET (kept as a tuple)
            case 0x7D: try push(try newDict()) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popMark()
                let dict = try newDict()
                try setItems(items, in: dict)
                try push(dict)
            case 0x61: // APPEND
                let item = try pop()
                try appendItems([item], to: try top())
            case 0x65, 0x90: // APPENDS, ADDITEMS
                let items = try popMark()
                try appendItems(items, to: try top())
            case 0x73: // SETITEM
                let value = try pop(), key = try pop()
                try setItems([key, value], in: try top())
            case 0x75: // SETITEMS
                let items = try popMark()
                try setItems(items, in: try top())
            case 0x71: try memoize(Int(try reader.u8())) // BINPUT
            case 0x72: try memoize(try reader.u32()) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x70: // PUT (text)
                let line = String(decoding: try reader.line(maxLength: 32), as: UTF8.self)
                guard let i = Int(line) else { throw FormatFailure("\(reader.what): bad PUT index at \(at)") }
                try memoize(i)
            case 0x68: try recall(Int(try reader.u8())) // BINGET
            case 0x6A: try recall(try reader.u32()) // LONG_BINGET
            case 0x67: // GET (text)
                let line = String(decoding: try reader.line(maxLength: 32), as: UTF8.self)
                guard let i = Int(line) else { throw FormatFailure("\(reader.what): bad GET index at \(at)") }
                try recall(i)
            case 0x63: // GLOBAL 'module\nname\n'
                let module = String(decoding: try reader.line(maxLength: 256), as: UTF8.self)
                let name = String(decoding: try reader.line(maxLength: 256), as: UTF8.self)
                try push(try global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let nameValue = try pop(), moduleValue = try pop()
                guard case .string(let module) = moduleValue, case .string(let name) = nameValue else {
                    throw FormatFailure("\(reader.what): STACK_GLOBAL needs two strings")
                }
                try push(try global(module: module, name: name))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                try checkContainers()
                try push(try PickleGlobals.call(callable, args, arena: &arena))
            case 0x81, 0x92: // NEWOBJ, NEWOBJ_EX
                if op == 0x92 { _ = try pop() }  // NEWOBJ_EX keyword arguments: irrelevant to an opaque object
                let args = try pop(), cls = try pop()
                switch cls {
                case .global, .object: break
                default: throw FormatFailure("\(reader.what): NEWOBJ on a \(cls.typeName)")
                }
                try checkContainers()
                arena.objects.append(PickleObject(type: "\(cls)", args: args))
                try push(.object(arena.objects.count - 1))
            case 0x62: // BUILD: obj.__setstate__(state); kept only for opaque objects
                let state = try pop()
                let target = try top()
                if case .object(let i) = target { arena.objects[i].state = state }
            case 0x51: // BINPERSID
                let pid = try pop()
                try push(try persistentLoad(pid, arena))
            default:
                throw FormatFailure(
                    "\(reader.what): unsupported pickle opcode 0x\(String(op, radix: 16)) at offset \(at)")
            }
        }
    }
}
