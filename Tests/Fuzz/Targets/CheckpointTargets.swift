// Fuzz targets over SegCore's checkpoint parsers (built with Sources/SegCore/Checkpoint).

/// The targets, by folder name.
let targets: [String: ([UInt8]) throws -> Void] = [
    "checkpoint": { _ = try Checkpoint.load(bytes: $0) },
    "torch-zip": { _ = try TorchCheckpoint.readZip($0) },
    "torch-legacy": { _ = try TorchCheckpoint.readLegacy($0) },
    "safetensors": { _ = try SafeTensors.read($0) },
    "pickle": { bytes in
        var unpickler = Unpickler(reader: ByteReader(bytes, what: "pickle"), persistentLoad: { id, _ in id })
        _ = try unpickler.load()
    },
]
