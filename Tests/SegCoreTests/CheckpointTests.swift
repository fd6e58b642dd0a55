import Foundation
import Testing
import TestSupport

import SegCore

/// Checkpoint loaders: the four containers of one mmseg model agree bit-exactly, every shared fixture's
/// .pth equals its safetensors, hostile pickles are refused without side effects, and damaged files
/// end in `CheckpointError`, never a crash.
@Suite struct CheckpointTests {
    static let folder = "mmseg/dlv3p_r18_d8_potsdam/"
    static let files = [
        "checkpoint.pth", "checkpoint_legacy.pth", "checkpoint_runner_style.pth", "weights.safetensors",
    ]

    static func local(_ name: String) throws -> Checkpoint {
        try Checkpoint.load(path: Fixtures.local(folder + name).path)
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Fixtures.local(folder + name)))
    }

    /// The same tensors, keys and bytes; `ordered` also requires the same key order.
    static func expectSameTensors(_ a: Checkpoint, _ b: Checkpoint, ordered: Bool) {
        if ordered { #expect(a.keys == b.keys) } else { #expect(a.keys.sorted() == b.keys.sorted()) }
        #expect(a.tensors.count == a.keys.count)
        for key in a.keys {
            guard let x = a.tensors[key], let y = b.tensors[key] else {
                Issue.record("\(key) missing")
                continue
            }
            #expect(x.dtype == y.dtype && x.shape == y.shape, "\(key)")
            #expect(x.bytes == y.bytes, "\(key) bytes differ")
            #expect(x.bytes.count == x.count * x.dtype.itemSize, "\(key)")
        }
    }

    // MARK: real files

    @Test func fourContainersHoldTheSameStateDict() throws {
        let zip = try Self.local("checkpoint.pth")
        let legacy = try Self.local("checkpoint_legacy.pth")
        let runner = try Self.local("checkpoint_runner_style.pth")
        let safe = try Self.local("weights.safetensors")
        #expect(zip.format == .torchZip && runner.format == .torchZip)
        #expect(legacy.format == .torchLegacy && safe.format == .safetensors)
        Self.expectSameTensors(zip, legacy, ordered: true)
        Self.expectSameTensors(zip, runner, ordered: true)
        Self.expectSameTensors(zip, safe, ordered: false)
        // BN counters are int64 scalars and stay out of floatTensors().
        let counters = zip.keys.filter { $0.hasSuffix("num_batches_tracked") }
        #expect(!counters.isEmpty)
        #expect(counters.allSatisfy { zip.tensors[$0]?.dtype == .int64 && zip.tensors[$0]?.shape == [] })
        let floats = zip.floatTensors()
        #expect(floats.count == zip.keys.count - counters.count)
        if let w = floats["backbone.stem.0.weight"], let stored = zip.tensors["backbone.stem.0.weight"] {
            #expect(w.shape == stored.shape && w.data == stored.floats())
        } else {
            Issue.record("backbone.stem.0.weight missing")
        }
    }

    @Test func metaAgreesAcrossTorchContainers() throws {
        let zip = try Self.local("checkpoint.pth")
        let classes = try #require(zip.meta.classes)
        let palette = try #require(zip.meta.palette)
        #expect(classes.count == palette.count && !classes.isEmpty)
        #expect(palette.allSatisfy { $0.count == 3 && $0.allSatisfy { (0...255).contains($0) } })
        let config = try #require(zip.meta.configText)
        #expect(config.contains("num_classes=\(classes.count)"))
        #expect(try Self.local("checkpoint_legacy.pth").meta == zip.meta)
        #expect(try Self.local("checkpoint_runner_style.pth").meta == zip.meta)
        #expect(try Self.local("weights.safetensors").meta == CheckpointMeta())
        // The classifier is as wide as the class list.
        #expect(zip.tensors["decode_head.conv_seg.weight"]?.shape.first == classes.count)
    }

    @Test(.enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg")) func everySharedFixtureMatchesItsSafetensors() throws {
        let root = try Fixtures.requireShared("fixtures/mmseg")
        let folders = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        var checked = 0
        for name in folders {
            let dir = root.appendingPathComponent(name)
            let safePath = dir.appendingPathComponent("weights.safetensors").path
            guard FileManager.default.fileExists(atPath: safePath) else { continue }
            let safe = try Checkpoint.load(path: safePath)
            let oracle = try OracleFixture(folder: dir).json
            for file in ["checkpoint.pth", "checkpoint_legacy.pth", "checkpoint_runner_style.pth"] {
                let path = dir.appendingPathComponent(file).path
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let pth = try Checkpoint.load(path: path)
                Self.expectSameTensors(pth, safe, ordered: false)
                #expect(pth.keys.count == oracle["state_dict_keys"] as? Int, "\(name)/\(file)")
                checked += 1
            }
        }
        #expect(checked >= folders.count)
    }

    @Test(.enabled(if: Fixtures.hasShared("docs/mmseg-keys/dlv3p_r18_d8.txt"), "needs ../shared/docs/mmseg-keys/dlv3p_r18_d8.txt")) func keyOrderFollowsTheReferenceKeyList() throws {
        let list = try Fixtures.requireShared("docs/mmseg-keys/dlv3p_r18_d8.txt")
        let names = try String(contentsOf: list, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") }.compactMap { $0.split(separator: "\t").first.map(String.init) }
        #expect(try Self.local("checkpoint.pth").keys == names)
    }

    // MARK: hostile pickles

    static let marker = FileManager.default.temporaryDirectory
        .appendingPathComponent("aerialseg-pwned-\(ProcessInfo.processInfo.processIdentifier)").path

    /// `module.name(arg)` called through GLOBAL (or STACK_GLOBAL) + REDUCE.
    static func callPickle(_ module: String, _ name: String, _ arg: String, stackGlobal: Bool = false) -> [UInt8] {
        var p = Pickle(protocolVersion: stackGlobal ? 4 : 2)
        if stackGlobal {
            p.string(module); p.string(name); p.op(0x93)
        } else {
            p.global(module, name)
        }
        p.string(arg); p.op(0x85); p.op(0x52); p.op(0x2E)
        return p.bytes
    }

    static let hostile: [(String, String, String, Bool)] = [
        ("os", "system", "touch \(marker)", false),
        ("posix", "system", "touch \(marker)", false),
        ("builtins", "eval", "open('\(marker)', 'w')", false),
        ("builtins", "exec", "open('\(marker)', 'w')", true),
        ("__builtin__", "__import__", "os", false),
        ("subprocess", "Popen", "touch \(marker)", false),
        ("sys", "exit", "1", true),
        ("torch", "load", marker, false),
    ]

    @Test(arguments: 0..<hostile.count)
    func hostileGlobalsAreRefusedWithoutSideEffects(_ i: Int) throws {
        let (module, name, arg, stackGlobal) = Self.hostile[i]
        let pickle = Self.callPickle(module, name, arg, stackGlobal: stackGlobal)
        let containers: [(String, [UInt8])] = [
            ("zip", makeZip(["archive/data.pkl": pickle, "archive/version": Array("3\n".utf8)])),
            ("raw pickle", pickle),
            ("legacy", legacyHeader() + pickle),
        ]
        for (label, bytes) in containers {
            let error = #expect(throws: CheckpointError.self, "\(label)") {
                try Checkpoint.load(bytes: bytes, path: "hostile.pth")
            }
            #expect(error?.reason == "checkpoint references the Python global `\(module).\(name)`", "\(label)")
            #expect(error?.hint.contains("never runs code") == true)
            #expect(error?.description.hasPrefix("hostile.pth: checkpoint references") == true)
            #expect(!FileManager.default.fileExists(atPath: Self.marker))
        }
    }

    @Test(arguments: ["checkpoint.pth", "checkpoint_legacy.pth", "checkpoint_runner_style.pth"])
    func hostileGlobalInsideARealCheckpointIsRefused(_ name: String) throws {
        // Same length as the original GLOBAL text; the NONE padding after it is never reached.
        var bytes = try Self.bytes(name)
        let original = Array("torch\nLongStorage\n".utf8), hostile = Array("os\nsystem\nNNNNNNNN".utf8)
        let at = try #require((0...(bytes.count - original.count)).first {
            bytes[$0..<($0 + original.count)].elementsEqual(original)
        })
        bytes.replaceSubrange(at..<(at + original.count), with: hostile)
        let error = #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: bytes, path: name) }
        #expect(error?.reason == "checkpoint references the Python global `os.system`")
    }

    // MARK: hand-computed tensors

    @Test func stridedViewsAndHalfTypesAreMaterialised() throws {
        var p = Pickle()
        p.op(0x7D); p.op(0x28)  // {  MARK
        // A (3, 2) transpose view of storage 0 = [0 1 2 3 4 5]: rows (0,3) (1,4) (2,5).
        p.string("module.w"); p.tensor(storage: "FloatStorage", key: "0", numel: 6, size: [3, 2], stride: [1, 3])
        // Offset view: elements 2..3 of storage 0.
        p.string("v"); p.tensor(storage: "FloatStorage", key: "0", numel: 6, offset: 2, size: [2], stride: [1])
        p.string("h"); p.tensor(storage: "HalfStorage", key: "1", numel: 4, size: [4], stride: [1])
        p.string("b"); p.tensor(storage: "BFloat16Storage", key: "2", numel: 2, size: [2], stride: [1])
        p.string("d"); p.tensor(storage: "DoubleStorage", key: "3", numel: 1, size: [], stride: [])
        p.string("n"); p.tensor(storage: "LongStorage", key: "4", numel: 1, size: [], stride: [])
        p.op(0x75); p.op(0x2E)  // SETITEMS STOP
        let floats: [Float] = [0, 1, 2, 3, 4, 5]
        let zip = makeZip([
            "ckpt/data.pkl": p.bytes,
            "ckpt/data/0": floats.flatMap { le($0.bitPattern) },
            "ckpt/data/1": [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x7B],  // 1, -2, 2^-24, 65504
            "ckpt/data/2": [0x80, 0x3F, 0x49, 0x40],  // 1, 3.140625
            "ckpt/data/3": le((0.5 as Double).bitPattern),
            "ckpt/data/4": le(UInt64(7)),
        ])
        let ckpt = try Checkpoint.load(bytes: zip)
        #expect(ckpt.keys == ["w", "v", "h", "b", "d", "n"])
        #expect(ckpt.tensors["w"]?.floats() == [0, 3, 1, 4, 2, 5])
        #expect(ckpt.tensors["v"]?.floats() == [2, 3])
        #expect(ckpt.tensors["h"]?.floats() == [1, -2, 0x1p-24, 65504])
        #expect(ckpt.tensors["b"]?.floats() == [1, 3.140625])
        #expect(ckpt.tensors["d"]?.floats() == [0.5])
        #expect(ckpt.tensors["n"]?.integers() == [7])
        let converted = ckpt.floatTensors()
        #expect(converted.count == 5 && converted["n"] == nil)
        #expect(converted["w"] == Tensor(shape: [3, 2], data: [0, 3, 1, 4, 2, 5]))
    }

    @Test func tensorsReachingPastTheirStorageAreRejected() throws {
        let views: [([Int], [Int], Int)] = [
            ([4, 2], [1, 3], 0), ([6], [1], 1), ([2, 2], [0, 5], 2), ([1 << 40, 1 << 40], [1, 1], 0),
            ([1 << 30], [0], 0), ([-1], [1], 0), ([3], [-1], 2),
        ]
        for (size, stride, offset) in views {
            var p = Pickle()
            p.op(0x7D); p.string("w")
            p.tensor(storage: "FloatStorage", key: "0", numel: 6, offset: offset, size: size, stride: stride)
            p.op(0x73); p.op(0x2E)
            let zip = makeZip(["a/data.pkl": p.bytes, "a/data/0": [UInt8](repeating: 0, count: 24)])
            #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: zip) }
        }
    }

    @Test func stateDictIsFoundUnderModelOrStateDict() throws {
        for wrapper in ["model", "state_dict"] {
            var p = Pickle()
            p.op(0x7D); p.string("epoch"); p.int(3); p.op(0x73)  // {'epoch': 3, wrapper: {'module.x': t}}
            p.string(wrapper); p.op(0x7D); p.string("module.x")
            p.tensor(storage: "FloatStorage", key: "0", numel: 2, size: [2], stride: [1])
            p.op(0x73); p.op(0x73); p.op(0x2E)
            let data: [Float] = [1.5, -3]
            let zip = makeZip(["m/data.pkl": p.bytes, "m/data/0": data.flatMap { le($0.bitPattern) }])
            let ckpt = try Checkpoint.load(bytes: zip)
            #expect(ckpt.keys == ["x"] && ckpt.tensors["x"]?.floats() == data, "\(wrapper)")
            #expect(ckpt.meta == CheckpointMeta())
        }
    }

    @Test func deepCyclicAndOversizedInputsAreHarmless() throws {
        // 300k nested 1-tuples: no recursion anywhere, so no stack overflow on build or release.
        var deep = Pickle()
        deep.op(0x29)
        deep.bytes += [UInt8](repeating: 0x85, count: 300_000)
        deep.op(0x2E)
        let tuple = #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: deep.bytes) }
        #expect(tuple?.reason.contains("magic number") == true)
        #expect(throws: CheckpointError.self) {
            try Checkpoint.load(bytes: makeZip(["a/data.pkl": deep.bytes]))
        }
        // A list containing itself, and a dict whose value is itself.
        var cyclic = Pickle()
        cyclic.op(0x5D); cyclic.bytes += [0x71, 0, 0x68, 0, 0x61]  // [] PUT0 GET0 APPEND
        cyclic.op(0x7D); cyclic.bytes += [0x71, 1]; cyclic.string("self"); cyclic.bytes += [0x68, 1, 0x73]
        cyclic.op(0x86); cyclic.op(0x2E)
        let loop = #expect(throws: CheckpointError.self) {
            try Checkpoint.load(bytes: makeZip(["a/data.pkl": cyclic.bytes]))
        }
        #expect(loop?.reason.contains("not a state dict") == true)
        // Lengths past the end of the data, and a safetensors header nested 200k deep.
        var long = Pickle()
        long.bytes += [0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x41]
        #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: makeZip(["a/data.pkl": long.bytes])) }
        let nested = Array(String(repeating: "[", count: 200_000).utf8)
        let safetensors = le(UInt64(nested.count + 1)) + [UInt8(ascii: "{")] + nested
        #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: safetensors) }
    }

    // MARK: damaged files

    @Test(arguments: files)
    func truncatedFilesThrow(_ name: String) throws {
        let full = try Self.bytes(name)
        var cuts = (0..<16).map { full.count * $0 / 16 }
        cuts += [1, 7, 9, full.count - 1]
        for cut in cuts {
            #expect(throws: CheckpointError.self, "cut at \(cut)") {
                try Checkpoint.load(bytes: Array(full[..<cut]), path: name)
            }
        }
    }

    @Test func randomCorruptionsNeverCrash() throws {
        var rng = SplitMix64(seed: 0xAE51A1)
        let originals = try Self.files.map { try Self.bytes($0) }
        var loaded = 0, refused = 0
        let safetensors = originals[3]
        let payloadStart = 8 + Int(safetensors[0..<8].reversed().reduce(0) { $0 << 8 | UInt64($1) })
        for trial in 0..<300 {
            let file = trial % originals.count
            var bytes = originals[file]
            var touched: [Int] = []
            // One to four bytes replaced, biased to the front where headers and pickles live.
            for _ in 0...Int(rng.next() % 4) {
                let limit = rng.next() % 2 == 0 ? min(bytes.count, 60_000) : bytes.count
                touched.append(Int(rng.next() % UInt64(limit)))
                bytes[touched[touched.count - 1]] = UInt8(truncatingIfNeeded: rng.next())
            }
            do {
                let ckpt = try Checkpoint.load(bytes: bytes, path: "corrupt")
                #expect(ckpt.tensors.count == ckpt.keys.count)
                loaded += 1
            } catch let error as CheckpointError {
                // Damage confined to safetensors' tensor payload must still load.
                #expect(!(file == 3 && touched.allSatisfy { $0 >= payloadStart }), "\(error)")
                refused += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        print("corruption trials: \(loaded) loaded, \(refused) refused")
        #expect(loaded + refused == 300 && loaded > 0 && refused > 0)
    }

    @Test func notCheckpointsGiveClearErrors() throws {
        let cases: [([UInt8], String)] = [
            ([], "the file is empty"),
            (Array("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n".utf8), "not a checkpoint"),
            (Array("{\"state_dict\": {\"w\": [1, 2, 3]}}".utf8), "not a checkpoint"),
            (makeZip(["readme.txt": Array("hello".utf8)]), "no data.pkl"),
        ]
        for (bytes, phrase) in cases {
            let error = #expect(throws: CheckpointError.self) { try Checkpoint.load(bytes: bytes, path: "x.pth") }
            #expect(error?.reason.contains(phrase) == true, "\(error?.description ?? "")")
        }
        let missing = #expect(throws: CheckpointError.self) { try Checkpoint.load(path: "/nonexistent/x.pth") }
        #expect(missing?.description.hasPrefix("/nonexistent/x.pth: cannot read the file") == true)
    }
}

// MARK: helpers: a tiny pickle writer and zip writer for crafted inputs

/// Protocol-2 pickle bytes, written opcode by opcode.
fileprivate struct Pickle {
    var bytes: [UInt8]

    init(protocolVersion: UInt8 = 2) { bytes = [0x80, protocolVersion] }

    mutating func op(_ code: UInt8) { bytes.append(code) }

    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        bytes.append(0x58)
        bytes += le(UInt32(utf8.count))
        bytes += utf8
    }

    mutating func int(_ v: Int) {
        bytes.append(0x4A)
        bytes += le(UInt32(truncatingIfNeeded: v))
    }

    mutating func long(_ v: Int) {  // LONG1 with 8 bytes, for values past Int32
        bytes += [0x8A, 8] + le(UInt64(bitPattern: Int64(v)))
    }

    mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` as torch writes it.
    mutating func tensor(storage type: String, key: String, numel: Int, offset: Int = 0, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)
        op(0x28); string("storage"); global("torch", type); string(key); string("cpu"); int(numel); op(0x74)
        op(0x51)  // BINPERSID
        int(offset)
        op(0x28); size.forEach { long($0) }; op(0x74)
        op(0x28); stride.forEach { long($0) }; op(0x74)
        op(0x89)
        global("collections", "OrderedDict"); op(0x29); op(0x52)
        op(0x74); op(0x52)
    }
}

fileprivate func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}

/// A stored (uncompressed) zip with the given members, in key order, like torch's writer minus padding.
fileprivate func makeZip(_ members: [String: [UInt8]]) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    for (name, data) in members.sorted(by: { $0.key < $1.key }) {
        let nameBytes = Array(name.utf8)
        let offset = out.count
        out += le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + [0, 0, 0, 0]
        out += le(UInt32(0)) + le(UInt32(data.count)) + le(UInt32(data.count))
        out += le(UInt16(nameBytes.count)) + le(UInt16(0)) + nameBytes + data
        central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0))
        central += [0, 0, 0, 0] + le(UInt32(0)) + le(UInt32(data.count)) + le(UInt32(data.count))
        central += le(UInt16(nameBytes.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
        central += le(UInt32(0)) + le(UInt32(offset)) + nameBytes
    }
    let centralOffset = out.count
    out += central
    out += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0))
    out += le(UInt16(members.count)) + le(UInt16(members.count))
    out += le(UInt32(central.count)) + le(UInt32(centralOffset)) + le(UInt16(0))
    return out
}

/// The three header pickles of torch's legacy format: magic, protocol 1001, sys_info.
fileprivate func legacyHeader() -> [UInt8] {
    var out: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
    out += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]
    var info = Pickle()
    info.op(0x7D); info.string("little_endian"); info.op(0x88); info.op(0x73); info.op(0x2E)
    return out + info.bytes
}
