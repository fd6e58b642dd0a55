// libFuzzer entry for AerialSeg's parsers of untrusted bytes, compiled by Tests/Fuzz/run together
// with the parser's own sources and the file of Tests/Fuzz/Targets that defines `targets` for them
// (one module, so internal parsers can be targeted directly). The target is chosen by
// AERIALSEG_FUZZ_TARGET; each has a folder Tests/Fuzz/<target>/ with seeds.
// A parser may throw on any input; it must never crash, hang, leak or allocate without bound.
import Foundation

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
