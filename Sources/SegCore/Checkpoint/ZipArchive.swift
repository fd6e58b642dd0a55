/// The member table of a ZIP file whose members are stored uncompressed (PyTorch's container).
///
/// Sizes and offsets come from the central directory (zip64 records honoured): torch writes local
/// headers with the data-descriptor flag and zero sizes, and pads each payload to 64 bytes with a
/// local extra field, so the payload starts at `local offset + 30 + name length + local extra length`.
struct ZipArchive {
    struct Member {
        var name: String
        /// Absolute byte range of the stored payload.
        var start: Int
        var count: Int
    }

    let members: [String: Member]
    /// Member names in central-directory order.
    let names: [String]

    static let maxMembers = 1 << 20

    init(_ bytes: [UInt8]) throws {
        let r = ByteReader(bytes, what: "zip container")
        let eocd = try Self.findEndOfCentralDirectory(bytes)
        var entryCount = Int(try r.uintLE(at: eocd + 10, 2))
        var directorySize = Int(try r.uintLE(at: eocd + 12, 4))
        var directoryOffset = Int(try r.uintLE(at: eocd + 16, 4))
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // zip64: locator 20 bytes before the EOCD points at the zip64 end record.
            guard eocd >= 20, try r.uintLE(at: eocd - 20, 4) == 0x0706_4B50 else {
                throw FormatFailure("zip container: zip64 locator missing")
            }
            let record = try Self.int(try r.uintLE(at: eocd - 12, 8))
            guard try r.uintLE(at: record, 4) == 0x0606_4B50 else {
                throw FormatFailure("zip container: zip64 end record missing")
            }
            entryCount = try Self.int(try r.uintLE(at: record + 32, 8))
            directorySize = try Self.int(try r.uintLE(at: record + 40, 8))
            directoryOffset = try Self.int(try r.uintLE(at: record + 48, 8))
        }
        guard entryCount <= Self.maxMembers,
              directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset
        else {
            throw FormatFailure("zip container: central directory lies outside the file")
        }
        var cd = ByteReader(bytes, from: directoryOffset, to: directoryOffset + directorySize,
                            what: "zip central directory")
        var members: [String: Member] = [:]
        var names: [String] = []
        for _ in 0..<entryCount {
            guard try cd.u32() == 0x0201_4B50 else { throw FormatFailure("zip central directory entry is corrupted") }
            try cd.skip(6)
            let method = try cd.u16()
            try cd.skip(8)
            var compressed = try cd.u32()
            var size = try cd.u32()
            let nameLength = try cd.u16(), extraLength = try cd.u16(), commentLength = try cd.u16()
            try cd.skip(8)
            var localOffset = try cd.u32()
            let name = String(decoding: try cd.take(nameLength), as: UTF8.self)
            var extra = ByteReader(bytes, from: cd.position, to: cd.position + extraLength, what: "zip extra field")
            try cd.skip(extraLength + commentLength)
            while extra.remaining >= 4 {
                let id = try extra.u16(), length = try extra.u16()
                var field = ByteReader(bytes, from: extra.position, to: extra.position + length, what: "zip64 field")
                try extra.skip(length)
                guard id == 0x0001 else { continue }
                if size == 0xFFFF_FFFF { size = try Self.int(try field.u64()) }
                if compressed == 0xFFFF_FFFF { compressed = try Self.int(try field.u64()) }
                if localOffset == 0xFFFF_FFFF { localOffset = try Self.int(try field.u64()) }
            }
            guard method == 0 else {
                throw FormatFailure(
                    "zip member \(name) is compressed (method \(method)); PyTorch stores members uncompressed",
                    hint: "re-save the checkpoint with torch.save")
            }
            guard compressed == size else { throw FormatFailure("zip member \(name) has inconsistent sizes") }
            guard try r.uintLE(at: localOffset, 4) == 0x0403_4B50 else {
                throw FormatFailure("zip member \(name): local header missing at offset \(localOffset)")
            }
            let localName = Int(try r.uintLE(at: localOffset + 26, 2))
            let localExtra = Int(try r.uintLE(at: localOffset + 28, 2))
            let start = localOffset + 30 + localName + localExtra
            guard start <= bytes.count, size <= bytes.count - start else {
                throw FormatFailure("zip member \(name) extends past the end of the file")
            }
            if members[name] == nil { names.append(name) }
            members[name] = Member(name: name, start: start, count: size)
        }
        self.members = members
        self.names = names
    }

    /// Offset of the end-of-central-directory record, searched backwards over the maximal comment.
    private static func findEndOfCentralDirectory(_ bytes: [UInt8]) throws -> Int {
        guard bytes.count >= 22 else { throw FormatFailure("zip container is too short") }
        var i = bytes.count - 22
        let stop = max(0, bytes.count - 22 - 0xFFFF)
        while i >= stop {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4B, bytes[i + 2] == 0x05, bytes[i + 3] == 0x06 { return i }
            i -= 1
        }
        throw FormatFailure("zip container: end of central directory not found")
    }

    private static func int(_ value: UInt64) throws -> Int {
        guard value <= UInt64(Int.max) else { throw FormatFailure("zip container: size field too large") }
        return Int(value)
    }
}
