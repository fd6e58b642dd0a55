import Foundation
import Pipeline
import SegCore
import Testing
import TestSupport

/// The pipeline YAML decoder (Yams + `PipelineConfig` decoding and validation) on mutated seed
/// pipelines: a property-based stand-in for a fuzzer (Yams' C parser is not instrumented here).
/// Every input must decode or throw one line naming the file: never crash, hang or print more.
@Suite struct PipelineDecodingPropertyTests {
    static let seeds: [Data] = {
        let folder = Fixtures.packageRoot.appendingPathComponent("Pipelines")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().compactMap {
            FileManager.default.contents(atPath: folder.appendingPathComponent($0).path)
        }
    }()

    /// Values that probe the limits: huge, negative, non-finite, deep, wrong types.
    static let hostile = ["99999999999999999999", "-1", "0", "1e309", ".nan", "100000", "[[[[[[[[", "{a: {b: {c:",
                          "*anchor", "&a [*a, *a]", "~", "'", "\"\\u0000\"", "!!binary AAAA", "[]", "{}"]

    @Test func mutatedPipelinesDecodeOrFailWithOneLine() throws {
        #expect(Self.seeds.count >= 20)
        var state: UInt64 = 0x5EED_CAFE
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33) % max(n, 1)
        }
        var decoded = 0, refused = 0
        for _ in 0..<3000 {
            var bytes = [UInt8](Self.seeds[next(Self.seeds.count)])
            for _ in 0...next(4) {
                switch next(5) {
                case 0: bytes = Array(bytes.prefix(next(bytes.count + 1)))                      // truncate
                case 1: if !bytes.isEmpty { bytes[next(bytes.count)] ^= UInt8(1 << next(8)) }  // flip a bit
                case 2:                                                                      // a hostile value
                    let at = next(bytes.count + 1)
                    bytes.insert(contentsOf: Array(Self.hostile[next(Self.hostile.count)].utf8), at: at)
                case 3:                                                                      // replace a number
                    let digits = bytes.indices.filter { (0x30...0x39).contains(bytes[$0]) }
                    if !digits.isEmpty {
                        let i = digits[next(digits.count)]
                        bytes.replaceSubrange(i...i, with: Array(Self.hostile[next(6)].utf8))
                    }
                default:                                                                     // duplicate a slice
                    let a = next(bytes.count + 1), b = min(bytes.count, a + next(200))
                    bytes.insert(contentsOf: bytes[a..<b], at: next(bytes.count + 1))
                }
            }
            do {
                let config = try PipelineConfig.decode(Data(bytes), path: "fuzz.yaml")
                try config.validate(path: "fuzz.yaml")
                decoded += 1
            } catch {
                let line = "\(error)"
                #expect(line.hasPrefix("fuzz.yaml: ") && !line.contains("\n"), "\(line.prefix(300))")
                refused += 1
            }
        }
        #expect(decoded > 100 && refused > 100, "the mutations reach both outcomes: \(decoded) / \(refused)")
    }
}
