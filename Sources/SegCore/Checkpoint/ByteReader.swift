/// A failure while decoding a checkpoint's bytes, before the file path is known.
///
/// `Checkpoint.load` turns it into a `CheckpointError` that names the file.
struct FormatFailure: Error {
    var reason: String
    var hint: String

    init(_ reason: String, hint: String = "the file is truncated or corrupted; re-download or re-export it") {
        self.reason = reason
        self.hint = hint
    }
}

/// A bounds-checked little-endian cursor over a byte buffer.
///
/// Every read checks the remaining length first and throws `FormatFailure` instead of trapping,
/// so truncated or hostile files end in an error value.
struct ByteReader {
    let bytes: [UInt8]
    /// Absolute index of the next byte to read.
    var position: Int
    /// One past the last readable byte (reads never go beyond it).
    let end: Int
    /// What is being read, for error messages ("data.pkl", "safetensors header").
    let what: String

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil, what: String) {
        self.bytes = bytes
        let stop = min(end ?? bytes.count, bytes.count)
        self.position = max(0, min(start, stop))
        self.end = stop
        self.what = what
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position >= end }

    private func need(_ count: Int) throws {
        guard count >= 0, count <= end - position else {
            throw FormatFailure("\(what) ends early: needs \(count) bytes at offset \(position), \(remaining) left")
        }
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    /// Reads `count` bytes (little-endian) as an unsigned integer, `count` ≤ 8.
    mutating func uintLE(_ count: Int) throws -> UInt64 {
        try need(count)
        var value: UInt64 = 0
        for i in 0..<count {
            value |= UInt64(bytes[position + i]) << (8 * UInt64(i))
        }
        position += count
        return value
    }

    mutating func u16() throws -> Int { Int(try uintLE(2)) }
    mutating func u32() throws -> Int { Int(try uintLE(4)) }
    mutating func u64() throws -> UInt64 { try uintLE(8) }
    mutating func i32() throws -> Int { Int(Int32(bitPattern: UInt32(try uintLE(4)))) }
    mutating func i64() throws -> Int64 { Int64(bitPattern: try uintLE(8)) }

    /// A big-endian IEEE double (pickle BINFLOAT).
    mutating func f64BE() throws -> Double {
        try need(8)
        var value: UInt64 = 0
        for i in 0..<8 {
            value = (value << 8) | UInt64(bytes[position + i])
        }
        position += 8
        return Double(bitPattern: value)
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try need(count)
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func skip(_ count: Int) throws {
        try need(count)
        position += count
    }

    /// Bytes up to (not including) the next `\n`, which is consumed.
    mutating func line(maxLength: Int) throws -> ArraySlice<UInt8> {
        let limit = min(end, position + maxLength + 1)
        var i = position
        while i < limit {
            if bytes[i] == 0x0A {
                defer { position = i + 1 }
                return bytes[position..<i]
            }
            i += 1
        }
        throw FormatFailure("\(what): unterminated text line at offset \(position)")
    }

    /// Reads a little-endian unsigned integer at an absolute offset without moving the cursor.
    func uintLE(at offset: Int, _ count: Int) throws -> UInt64 {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw FormatFailure("\(what): offset \(offset) + \(count) is outside the file (\(bytes.count) bytes)")
        }
        var value: UInt64 = 0
        for i in 0..<count {
            value |= UInt64(bytes[offset + i]) << (8 * UInt64(i))
        }
        return value
    }
}

/// Overflow-checked arithmetic for sizes read from files.
enum Checked {
    static func mul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        guard !o else { throw FormatFailure("\(what()) overflows") }
        return r
    }

    static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        guard !o else { throw FormatFailure("\(what()) overflows") }
        return r
    }
}
