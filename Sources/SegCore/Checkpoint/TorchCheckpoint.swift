/// PyTorch checkpoints: the zip container (torch ≥ 1.6) and the legacy concatenated pickles.
///
/// Both hold one pickle whose tensors point at storages through persistent ids; the storages are
/// read from `<prefix>/data/<key>` zip members or, in the legacy format, from the raw records that
/// follow the pickles. Tensors are rebuilt only after all storages are known, as strided views
/// materialised into contiguous row-major bytes.
enum TorchCheckpoint {
    /// Storages named by the pickle's persistent ids, by key.
    final class StorageTable {
        var dtypes: [String: DType] = [:]

        /// `('storage', torch.<T>Storage, key, location, numel[, view_metadata])` → `.storage`.
        func load(_ pid: PickleValue, _ arena: PickleArena) throws -> PickleValue {
            guard let items = arena.sequence(pid), items.count == 5 || items.count == 6,
                  case .string("storage") = items[0], case .global(_, let typeName) = items[1],
                  case .string(let key) = items[2], case .int(let numel) = items[4], numel >= 0
            else {
                throw FormatFailure("unsupported persistent id in the pickle (expected a torch storage)")
            }
            guard let dtype = PickleGlobals.storageTypes[typeName] else {
                throw FormatFailure("unsupported storage type torch.\(typeName)")
            }
            if let known = dtypes[key], known != dtype {
                throw FormatFailure("storage \(key) is used both as \(known) and \(dtype)")
            }
            dtypes[key] = dtype
            var ref = StorageRef(key: key, dtype: dtype, numel: numel)
            if items.count == 6, let view = arena.sequence(items[5]) {
                // Legacy storage view: (view_key, offset, size) inside the root storage.
                guard view.count == 3, case .int(let offset) = view[1], case .int(let count) = view[2],
                      offset >= 0, count >= 0
                else {
                    throw FormatFailure("malformed legacy storage view metadata")
                }
                ref.viewOffset = offset
                ref.viewCount = count
            }
            return .storage(ref)
        }
    }

    /// Where a storage's bytes lie in the file.
    struct StorageExtent {
        var start: Int
        var elements: Int
    }

    // MARK: zip

    static func readZip(_ bytes: [UInt8]) throws -> Checkpoint {
        let zip = try ZipArchive(bytes)
        let pickles = zip.names.filter { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }
        guard let pickleName = pickles.first else {
            throw FormatFailure(
                "zip file has no data.pkl member, so it is not a PyTorch checkpoint",
                hint: "expected a file written by torch.save")
        }
        guard pickles.count == 1 else { throw FormatFailure("zip file has several data.pkl members") }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = zip.members[prefix + "byteorder"] {
            let text = String(decoding: bytes[order.start..<(order.start + order.count)], as: UTF8.self)
            guard text.hasPrefix("little") else {
                throw FormatFailure("checkpoint byte order is \(text)", hint: "only little-endian files are supported")
            }
        }
        guard let pickle = zip.members[pickleName] else { throw FormatFailure("zip member table is inconsistent") }
        let table = StorageTable()
        var unpickler = Unpickler(
            reader: ByteReader(bytes, from: pickle.start, to: pickle.start + pickle.count, what: pickleName),
            persistentLoad: table.load)
        let root = try unpickler.load()
        return try assemble(root, unpickler.arena, format: .torchZip, bytes: bytes) { ref in
            guard let member = zip.members[prefix + "data/" + ref.key] else {
                throw FormatFailure("storage record \(prefix)data/\(ref.key) is missing from the zip")
            }
            let needed = try Checked.mul(ref.numel, ref.dtype.itemSize, "storage \(ref.key) size")
            guard member.count >= needed else {
                throw FormatFailure("storage \(ref.key) holds \(member.count) bytes, the pickle declares \(needed)")
            }
            return StorageExtent(start: member.start, elements: ref.numel)
        }
    }

    // MARK: legacy

    /// `0x1950A86A20F9469CFC6C` as pickled by LONG1, little-endian.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    static func readLegacy(_ bytes: [UInt8]) throws -> Checkpoint {
        var reader = ByteReader(bytes, what: "legacy checkpoint pickle")
        func next(_ table: StorageTable? = nil) throws -> (PickleValue, PickleArena) {
            let load = table?.load ?? { _, _ in throw FormatFailure("unexpected persistent id in a legacy header") }
            var unpickler = Unpickler(reader: reader, persistentLoad: load)
            let value = try unpickler.load()
            reader.position = unpickler.reader.position
            return (value, unpickler.arena)
        }
        let (magic, _) = try next()
        guard case .bigInt(let magicBytes) = magic, magicBytes == legacyMagic else {
            throw FormatFailure(
                "the file is a pickle without PyTorch's magic number, not a torch checkpoint",
                hint: "expected a file written by torch.save")
        }
        let (proto, _) = try next()
        guard case .int(1001) = proto else { throw FormatFailure("legacy checkpoint protocol is not 1001") }
        let (sysInfo, sysArena) = try next()
        if let little = sysArena.lookup(sysInfo, "little_endian"), case .bool(false) = little {
            throw FormatFailure("checkpoint is big-endian", hint: "only little-endian files are supported")
        }
        let table = StorageTable()
        let (root, arena) = try next(table)
        let (keyList, keyArena) = try next()
        guard let keys = keyArena.strings(keyList) else {
            throw FormatFailure("legacy checkpoint storage key list is malformed")
        }
        var extents: [String: StorageExtent] = [:]
        for key in keys {
            guard let dtype = table.dtypes[key] else {
                throw FormatFailure("legacy storage \(key) is not referenced by the pickle")
            }
            let count = try reader.i64()
            guard count >= 0, count <= Int64(reader.remaining / dtype.itemSize) else {
                throw FormatFailure("legacy storage \(key) declares \(count) elements past the end of the file")
            }
            extents[key] = StorageExtent(start: reader.position, elements: Int(count))
            try reader.skip(Int(count) * dtype.itemSize)
        }
        return try assemble(root, arena, format: .torchLegacy, bytes: bytes) { ref in
            guard let extent = extents[ref.key] else {
                throw FormatFailure("legacy storage \(ref.key) has no data record")
            }
            return extent
        }
    }

    // MARK: state dict

    /// Picks the state dict and meta out of the unpickled object and materialises its tensors.
    static func assemble(
        _ root: PickleValue, _ arena: PickleArena, format: Checkpoint.Format, bytes: [UInt8],
        storage: (StorageRef) throws -> StorageExtent
    ) throws -> Checkpoint {
        let stateDict = arena.lookup(root, "state_dict") ?? arena.lookup(root, "model") ?? root
        guard case .dict(let index) = stateDict else {
            throw FormatFailure(
                "the checkpoint holds a \(stateDict.typeName), not a state dict",
                hint: "expected {'state_dict': ...}, {'model': ...} or an OrderedDict of tensors")
        }
        let dict = arena.dicts[index]
        var keys: [String] = []
        var tensors: [String: StoredTensor] = [:]
        // Views sharing one storage are copied apart; cap the total so a few bytes of pickle cannot
        // demand terabytes (legitimate sharing, e.g. tied weights, stays far below this).
        let budget = bytes.count.multipliedReportingOverflow(by: 4).partialValue + (256 << 20)
        var total = 0
        for (keyValue, value) in zip(dict.keys, dict.values) {
            guard case .string(let rawKey) = keyValue, case .tensor(let t) = value else { continue }
            let record = arena.tensors[t]
            let key = TensorShape.strippingModulePrefix(rawKey)
            let tensor = try materialise(record, key: key, bytes: bytes, extent: try storage(record.storage))
            total += tensor.bytes.count
            guard total <= budget else {
                throw FormatFailure(
                    "the state dict's tensors would occupy more than \(budget) bytes, far more than the file")
            }
            if tensors[key] == nil { keys.append(key) }
            tensors[key] = tensor
        }
        guard !keys.isEmpty else {
            throw FormatFailure("the state dict holds no tensors", hint: "is this a model checkpoint?")
        }
        return Checkpoint(format: format, keys: keys, tensors: tensors, meta: meta(root, arena))
    }

    /// mmseg 1.x `meta.dataset_meta.{classes,palette}`, 0.x `meta.{CLASSES,PALETTE}`; `cfg` / `config` text.
    static func meta(_ root: PickleValue, _ arena: PickleArena) -> CheckpointMeta {
        guard let meta = arena.lookup(root, "meta") else { return CheckpointMeta() }
        var out = CheckpointMeta()
        let datasetMeta = arena.lookup(meta, "dataset_meta")
        if let classes = datasetMeta.flatMap({ arena.lookup($0, "classes") }) ?? arena.lookup(meta, "CLASSES") {
            out.classes = arena.strings(classes)
        }
        if let palette = datasetMeta.flatMap({ arena.lookup($0, "palette") }) ?? arena.lookup(meta, "PALETTE"),
           let rows = arena.sequence(palette) {
            let colors = rows.compactMap { arena.ints($0) }
            out.palette = colors.count == rows.count ? colors : nil
        }
        for name in ["cfg", "config"] {
            if case .string(let text)? = arena.lookup(meta, name) {
                out.configText = text
                break
            }
        }
        return out
    }

    /// Copies a strided view `storage[offset + Σ i_k·stride_k]` into contiguous row-major bytes,
    /// after checking that every element it touches lies inside the storage.
    static func materialise(
        _ record: TensorRecord, key: String, bytes: [UInt8], extent root: StorageExtent
    ) throws -> StoredTensor {
        let ref = record.storage
        let itemSize = ref.dtype.itemSize
        var extent = root
        if ref.viewCount != nil || ref.viewOffset != 0 {
            let count = ref.viewCount ?? (root.elements - ref.viewOffset)
            guard ref.viewOffset <= root.elements, count >= 0, count <= root.elements - ref.viewOffset else {
                throw FormatFailure("tensor `\(key)`: storage view lies outside storage \(ref.key)")
            }
            extent = StorageExtent(start: root.start + ref.viewOffset * itemSize, elements: count)
        }
        let size = record.size, stride = record.stride
        let count = try TensorShape.validatedCount(size, what: "tensor `\(key)`")
        guard stride.allSatisfy({ $0 >= 0 }) else {
            throw FormatFailure("tensor `\(key)` has a negative stride \(stride)")
        }
        if count == 0 { return StoredTensor(dtype: ref.dtype, shape: size, bytes: []) }
        guard count <= extent.elements else {
            throw FormatFailure(
                "tensor `\(key)` has \(count) elements but its storage \(ref.key) only \(extent.elements) "
                    + "(overlapping or broadcast views are not supported)")
        }
        var last = record.offset
        for (n, s) in zip(size, stride) {
            last = try Checked.add(last, try Checked.mul(n - 1, s, "extent of `\(key)`"), "extent of `\(key)`")
        }
        guard last < extent.elements else {
            throw FormatFailure(
                "tensor `\(key)` (offset \(record.offset), size \(size), stride \(stride)) reaches element \(last) "
                    + "of storage \(ref.key), which has \(extent.elements)")
        }
        var contiguous = true
        var expected = 1
        for d in stride.indices.reversed() where size[d] != 1 {
            if stride[d] != expected { contiguous = false }
            expected *= size[d]
        }
        let base = extent.start
        if contiguous {
            let from = base + record.offset * itemSize
            return StoredTensor(dtype: ref.dtype, shape: size, bytes: Array(bytes[from..<(from + count * itemSize)]))
        }
        var out = [UInt8](repeating: 0, count: count * itemSize)
        var index = [Int](repeating: 0, count: size.count)
        var element = record.offset
        for n in 0..<count {
            let from = base + element * itemSize
            for b in 0..<itemSize { out[n * itemSize + b] = bytes[from + b] }
            var d = size.count - 1
            while d >= 0 {
                index[d] += 1
                element += stride[d]
                if index[d] < size[d] { break }
                element -= stride[d] * size[d]
                index[d] = 0
                d -= 1
            }
        }
        return StoredTensor(dtype: ref.dtype, shape: size, bytes: out)
    }
}
