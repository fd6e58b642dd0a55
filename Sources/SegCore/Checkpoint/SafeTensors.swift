import Foundation

/// Reader for the safetensors format: `u64 LE N | N bytes of UTF-8 JSON header | raw data`.
///
/// Header entries are `"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`,
/// offsets relative to the first data byte; an optional `"__metadata__"` maps strings to strings.
/// Tensors are contiguous, row-major and little-endian. Keys are returned in data order.
enum SafeTensors {
    /// The header may not be larger than this (the reference implementation uses the same cap).
    static let maxHeaderBytes = 100 << 20

    static func looksLikeSafeTensors(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 10 else { return false }
        let reader = ByteReader(bytes, what: "safetensors header")
        guard let n = try? reader.uintLE(at: 0, 8), n >= 2, n <= UInt64(bytes.count - 8) else { return false }
        return bytes[8] == UInt8(ascii: "{")
    }

    static func dtype(_ code: String) -> DType? {
        switch code {
        case "F32": return .float32
        case "F64": return .float64
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "I64": return .int64
        case "I32": return .int32
        case "I16": return .int16
        case "I8": return .int8
        case "U8": return .uint8
        case "BOOL": return .bool
        default: return nil
        }
    }

    static func read(_ bytes: [UInt8]) throws -> Checkpoint {
        let reader = ByteReader(bytes, what: "safetensors file")
        let headerSize64 = try reader.uintLE(at: 0, 8)
        guard headerSize64 <= UInt64(min(maxHeaderBytes, bytes.count - 8)) else {
            throw FormatFailure("safetensors header length \(headerSize64) exceeds the file or the 100 MiB cap")
        }
        let headerSize = Int(headerSize64)
        let dataStart = 8 + headerSize
        let dataSize = bytes.count - dataStart
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]), options: [])
        } catch {
            throw FormatFailure("safetensors header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw FormatFailure("safetensors header is not a JSON object")
        }
        var entries: [(key: String, begin: Int, tensor: StoredTensor)] = []
        for (key, value) in header where key != "__metadata__" {
            guard let info = value as? [String: Any],
                  let code = info["dtype"] as? String,
                  let shapeJSON = info["shape"] as? [Any],
                  let offsetsJSON = info["data_offsets"] as? [Any], offsetsJSON.count == 2,
                  let begin = jsonInt(offsetsJSON[0]), let end = jsonInt(offsetsJSON[1])
            else {
                throw FormatFailure("safetensors entry `\(key)` lacks a valid dtype, shape or data_offsets")
            }
            guard let dtype = dtype(code) else {
                throw FormatFailure(
                    "safetensors entry `\(key)` has unsupported dtype \(code)",
                    hint: "supported: F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL")
            }
            var shape: [Int] = []
            for dim in shapeJSON {
                guard let d = jsonInt(dim) else {
                    throw FormatFailure("safetensors entry `\(key)` has a non-integer shape")
                }
                shape.append(d)
            }
            let count = try TensorShape.validatedCount(shape, what: "safetensors entry `\(key)`")
            let byteCount = try Checked.mul(count, dtype.itemSize, "size of `\(key)`")
            guard begin >= 0, begin <= end, end <= dataSize, end - begin == byteCount else {
                throw FormatFailure(
                    "safetensors entry `\(key)` has data_offsets [\(begin), \(end)] that do not match "
                        + "its \(byteCount) bytes within the \(dataSize) data bytes")
            }
            let slice = bytes[(dataStart + begin)..<(dataStart + end)]
            entries.append((key, begin, StoredTensor(dtype: dtype, shape: shape, bytes: Array(slice))))
        }
        entries.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.key < $1.key }
        var keys: [String] = []
        var tensors: [String: StoredTensor] = [:]
        for entry in entries {
            let key = TensorShape.strippingModulePrefix(entry.key)
            if tensors[key] == nil { keys.append(key) }
            tensors[key] = entry.tensor
        }
        return Checkpoint(format: .safetensors, keys: keys, tensors: tensors, meta: CheckpointMeta())
    }

    /// A JSON number that is an exact integer, else nil. (Foundation bridges numbers through
    /// NSNumber, so `1` and `true` are indistinguishable here; a boolean dimension reads as 0 or 1.)
    private static func jsonInt(_ value: Any) -> Int? {
        if value is String { return nil }
        if let i = value as? Int { return i }
        if let d = value as? Double, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
}

/// Shape rules shared by every format.
enum TensorShape {
    /// Most dimensions a checkpoint tensor may have.
    static let maxRank = 16
    /// Most elements a single tensor may have (2^36 ≈ 69 G).
    static let maxElements = 1 << 36

    /// Element count of `shape` after rejecting negative dimensions, excessive rank and absurd sizes.
    static func validatedCount(_ shape: [Int], what: @autoclosure () -> String) throws -> Int {
        guard shape.count <= maxRank else {
            throw FormatFailure("\(what()) has \(shape.count) dimensions (more than \(maxRank))")
        }
        var count = 1
        for d in shape {
            guard d >= 0, d <= maxElements else { throw FormatFailure("\(what()) has an invalid shape \(shape)") }
            count = try Checked.mul(count, d, "element count of \(what())")
            guard count <= maxElements else { throw FormatFailure("\(what()) has an absurd shape \(shape)") }
        }
        return count
    }

    /// mmengine's `revise_keys=[(r'^module\.', '')]`: one leading `module.` goes.
    static func strippingModulePrefix(_ key: String) -> String {
        key.hasPrefix("module.") ? String(key.dropFirst(7)) : key
    }
}
