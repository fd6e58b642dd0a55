// libFuzzer entry for AerialSeg's parsers of untrusted bytes, compiled by Tests/Fuzz/run together
// with the parser's own sources (one module, so internal parsers can be targeted directly). The
// target is chosen by AERIALSEG_FUZZ_TARGET; each has a folder Tests/Fuzz/<target>/ with seeds.
// A parser may throw on any input; it must never crash, hang, leak or allocate without bound.
import Foundation

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

nonisolated(unsafe) let target: ([UInt8]) throws -> Void = {
    let name = ProcessInfo.processInfo.environment["AERIALSEG_FUZZ_TARGET"] ?? ""
    guard let body = targets[name] else {
        fatalError("AERIALSEG_FUZZ_TARGET must be one of \(targets.keys.sorted())")
    }
    return body
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do { try target(Array(UnsafeBufferPointer(start: data, count: size))) } catch {}  // throwing is fine
    return 0
}
