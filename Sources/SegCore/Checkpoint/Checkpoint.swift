import Foundation

/// A model checkpoint read without Python: the state dict's tensors plus the dataset metadata.
///
/// Three containers are understood, sniffed from the content (never the extension):
/// PyTorch's zip format (torch ≥ 1.6, what mmengine writes), PyTorch's legacy concatenated-pickle
/// format (torch < 1.6), and safetensors. Pickles are decoded by a small interpreter that never
/// executes code: only an allowlist of Python globals is accepted, and every other global is an error.
///
/// The state dict is `ckpt['state_dict']` if present, else `ckpt['model']`, else the object itself,
/// and a leading `module.` is stripped from each key (as mmengine's loader does).
public struct Checkpoint: Sendable {
    /// The container the tensors came from.
    public enum Format: String, Sendable {
        case torchZip, torchLegacy, safetensors
    }

    public let format: Format
    /// State-dict keys in file order (pickle order for torch files, data order for safetensors),
    /// with a leading `module.` removed.
    public let keys: [String]
    /// Every tensor of the state dict by key.
    public let tensors: [String: StoredTensor]
    /// Class names, palette and config text when the file carries them.
    public let meta: CheckpointMeta
    /// SHA-256 of the file's bytes (lowercase hex, as `sha256sum` prints); nil for a checkpoint
    /// decoded from memory.
    public private(set) var sha256: String?

    /// A checkpoint built in memory (tests, converters); `keys` should list every tensor once.
    public init(format: Format, keys: [String], tensors: [String: StoredTensor], meta: CheckpointMeta) {
        self.format = format
        self.keys = keys
        self.tensors = tensors
        self.meta = meta
    }

    /// Reads and decodes the file at `path`.
    ///
    /// Throws `CheckpointError` (naming the file, what failed, and a hint) for unreadable, truncated,
    /// corrupted or unsupported files and for pickles that reference non-allowlisted Python globals.
    public static func load(path: String) throws -> Checkpoint {
        let bytes = try readWholeFile(path)
        var checkpoint = try load(bytes: bytes, path: path)
        checkpoint.sha256 = SHA256.hex(bytes)
        return checkpoint
    }

    /// The file's bytes, read with one `fread` into a preallocated array (no intermediate `Data`).
    private static func readWholeFile(_ path: String) throws -> [UInt8] {
        func failure(_ what: String) -> CheckpointError {
            CheckpointError(
                path: path, reason: "cannot read the file (\(what))", hint: "check the path and permissions")
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure(String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw failure("not a regular file") }
        guard let file = fopen(path, "rb") else { throw failure(String(cString: strerror(errno))) }
        defer { fclose(file) }
        let size = Int(info.st_size)
        var done = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            if let base = buffer.baseAddress, size > 0 { done = fread(base, 1, size, file) }
            count = done
        }
        guard done == size else { throw failure("short read: \(done) of \(size) bytes") }
        return bytes
    }

    /// Decodes a checkpoint already in memory; `path` only labels errors.
    public static func load(bytes: [UInt8], path: String = "<memory>") throws -> Checkpoint {
        do {
            return try decode(bytes)
        } catch let failure as FormatFailure {
            throw CheckpointError(path: path, reason: failure.reason, hint: failure.hint)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError(path: path, reason: "\(error)", hint: "the file may be corrupted")
        }
    }

    private static func decode(_ bytes: [UInt8]) throws -> Checkpoint {
        guard !bytes.isEmpty else {
            throw FormatFailure("the file is empty", hint: "expected a .pth checkpoint or a .safetensors file")
        }
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03 || bytes[2] == 0x05 {
            return try TorchCheckpoint.readZip(bytes)
        }
        if bytes.count >= 2, bytes[0] == 0x80, bytes[1] >= 2, bytes[1] <= 5 {
            return try TorchCheckpoint.readLegacy(bytes)
        }
        if SafeTensors.looksLikeSafeTensors(bytes) {
            return try SafeTensors.read(bytes)
        }
        throw FormatFailure(
            "not a checkpoint: the content is neither a PyTorch zip, a legacy PyTorch pickle nor safetensors",
            hint: "expected a file written by torch.save (mmsegmentation .pth) or safetensors")
    }

    /// Every floating-point tensor converted to Float32 (float16, bfloat16 and float64 too).
    /// Integer and boolean tensors (e.g. `num_batches_tracked`) are omitted.
    public func floatTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (key, stored) in tensors {
            if let values = stored.floats() {
                out[key] = Tensor(shape: stored.shape, data: values)
            }
        }
        return out
    }
}

/// Element types a checkpoint tensor can have.
public enum DType: String, Sendable {
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// Whether `floats()` converts this type.
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return true
        default: return false
        }
    }
}

/// One tensor of a checkpoint: its type, shape and contiguous row-major little-endian bytes.
///
/// Strided torch views are materialised on load, so `bytes` always holds
/// `shape.product * dtype.itemSize` bytes in C order (a scalar has `shape == []` and one element).
public struct StoredTensor: Sendable, Equatable {
    public let dtype: DType
    public let shape: [Int]
    /// Raw little-endian element bytes, row-major.
    public let bytes: [UInt8]

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    /// The values as Float32 for floating dtypes (float64 is rounded), nil for integer/bool tensors.
    public func floats() -> [Float]? {
        switch dtype {
        case .float32: return decoded(UInt32.self) { Float(bitPattern: $0) }
        case .float64: return decoded(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .float16: return decoded(UInt16.self, halfToFloat)
        case .bfloat16: return decoded(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        default: return nil
        }
    }

    /// `bytes` read as little-endian words of type `T`, each converted by `convert`.
    private func decoded<T: FixedWidthInteger & BitwiseCopyable>(_: T.Type, _ convert: (T) -> Float) -> [Float] {
        let size = MemoryLayout<T>.size, n = bytes.count / size
        return [Float](unsafeUninitializedCapacity: n) { out, done in
            bytes.withUnsafeBytes { raw in
                for i in 0..<n {
                    out[i] = convert(raw.loadUnaligned(fromByteOffset: size * i, as: T.self).littleEndian)
                }
            }
            done = n
        }
    }

    /// The values as Int64 for integer and bool dtypes, nil for floating dtypes.
    public func integers() -> [Int64]? {
        let size = dtype.itemSize
        let n = bytes.count / size
        var out = [Int64](repeating: 0, count: n)
        for i in 0..<n {
            var v: UInt64 = 0
            for b in 0..<size { v |= UInt64(bytes[i * size + b]) << (8 * UInt64(b)) }
            switch dtype {
            case .int64: out[i] = Int64(bitPattern: v)
            case .int32: out[i] = Int64(Int32(truncatingIfNeeded: v))
            case .int16: out[i] = Int64(Int16(truncatingIfNeeded: v))
            case .int8: out[i] = Int64(Int8(truncatingIfNeeded: v))
            case .uint8, .bool: out[i] = Int64(v)
            default: return nil
            }
        }
        return out
    }
}

/// IEEE binary16 → binary32, exact (subnormals, infinities and NaN included).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x03FF)
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        // Subnormal or zero: mantissa × 2^-24, exactly representable in Float.
        let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)
        return sign != 0 ? -magnitude : magnitude
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// What mmsegmentation stores next to the weights.
///
/// mmseg 1.x: `meta['dataset_meta']['classes'/'palette']` and `meta['cfg']`;
/// mmseg 0.x: `meta['CLASSES'/'PALETTE']` and `meta['config']`. All nil for safetensors.
public struct CheckpointMeta: Sendable, Equatable {
    /// Class names in label order.
    public var classes: [String]?
    /// One `[r, g, b]` per class.
    public var palette: [[Int]]?
    /// The training config as Python source text.
    public var configText: String?

    public init(classes: [String]? = nil, palette: [[Int]]? = nil, configText: String? = nil) {
        self.classes = classes
        self.palette = palette
        self.configText = configText
    }
}

/// Why a checkpoint could not be loaded. Description: `"<path>: <reason> (<hint>)"`.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public let hint: String

    public init(path: String, reason: String, hint: String) {
        self.path = path
        self.reason = reason
        self.hint = hint
    }

    public var description: String { "\(path): \(reason) (\(hint))" }
}
