import Foundation
import Pipeline
import Testing
import TestSupport

/// `MMEngineConfig`: the Python literal subset, mmengine's `_base_` merge rules, and hostile input
/// that must fail with `<file>:<line>: <what> (<hint>)`.
@Suite struct ConfigImportReaderTests {
    /// Writes `files` (name → text) into a fresh folder and reads `main.py` there.
    func load(_ main: String, _ files: [String: String] = [:]) throws -> ConfigDict {
        try load(main, files, in: Fixtures.temporaryDirectory("aerialseg-config"))
    }

    func load(_ main: String, _ files: [String: String], in dir: URL) throws -> ConfigDict {
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files.merging(["main.py": main], uniquingKeysWith: { $1 }) {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(),
                                                    withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return try MMEngineConfig.load(path: dir.appendingPathComponent("main.py").path)
    }

    /// The error reading `main` gives, as `<file name>:<line>: ...` (the folder dropped).
    func failure(_ main: String, _ files: [String: String] = [:]) -> String {
        let dir = Fixtures.temporaryDirectory("aerialseg-config")
        do {
            _ = try load(main, files, in: dir)
            return "no error"
        } catch let error as PipelineError {
            return error.description.replacingOccurrences(of: dir.path + "/", with: "")
        } catch {
            return "unexpected \(error)"
        }
    }

    func dict(_ entries: KeyValuePairs<String, ConfigValue>) -> ConfigValue {
        .dict(ConfigDict(entries.map { ($0.key, $0.value) }))
    }

    // MARK: - the literal subset

    @Test func literals() throws {
        let config = try load("""
            # comment
            a = 1  # trailing comment
            b = -2.5e-1
            c = 'x' "y" \\
                'z'
            d = '''multi
            line'''
            e = [True, False, None, (1,), (1, 2,), ()]
            f = {'k': 1, "k2": [1, 2]}
            g = dict(
                x=1,   # inside brackets
                y=(3, 4),
            )
            h = 'tab\\tquote\\'' r'\\d'
            i = 1_000, 0., .5, 1e-4
            """)
        #expect(config["a"] == .int(1))
        #expect(config["b"] == .float(-0.25))
        #expect(config["c"] == .string("xyz"))
        #expect(config["d"] == .string("multi\nline"))
        #expect(config["e"] == .list([.bool(true), .bool(false), .none, .tuple([.int(1)]), .tuple([.int(1), .int(2)]),
                                      .tuple([])]))
        #expect(config["f"] == dict(["k": .int(1), "k2": .list([.int(1), .int(2)])]))
        #expect(config["g"] == dict(["x": .int(1), "y": .tuple([.int(3), .int(4)])]))
        #expect(config["h"] == .string("tab\tquote'\\d"))
        #expect(config["i"] == .tuple([.int(1000), .float(0), .float(0.5), .float(1e-4)]))
        #expect(config.keys == ["a", "b", "c", "d", "e", "f", "g", "h", "i"], "order kept")
    }

    @Test func variablesAreSubstitutedWithTheirValueAtThatPoint() throws {
        let config = try load("""
            norm_cfg = dict(type='SyncBN', requires_grad=True)
            model = dict(backbone=dict(norm_cfg=norm_cfg))
            norm_cfg = dict(type='BN')
            max_iters = 400
            val_interval = max_iters + 1 - 2
            ratios = [0.5, 1.0]
            tta = [dict(scale_factor=r) for r in ratios]
            """)
        #expect(config.value(at: ["model", "backbone", "norm_cfg", "type"]) == .string("SyncBN"))
        #expect(config["norm_cfg"] == dict(["type": .string("BN")]))
        #expect(config["val_interval"] == .int(399))
        #expect(config["tta"] == .list([dict(["scale_factor": .float(0.5)]), dict(["scale_factor": .float(1.0)])]))
        #expect(config["r"] == nil, "the loop variable does not leak")
    }

    // MARK: - _base_ merging

    @Test func childDictsMergeRecursivelyAndListsReplace() throws {
        let config = try load("""
            _base_ = ['base.py', 'sub/other.py']
            model = dict(backbone=dict(depth=18), decode_head=dict(dilations=[1, 2]))
            """, [
            "base.py": """
                model = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c', depth=50),
                             decode_head=dict(type='ASPPHead', dilations=[1, 6, 12, 18]))
                """,
            "sub/other.py": "crop_size = (512, 512)\n",
        ])
        #expect(config.value(at: ["model", "type"]) == .string("EncoderDecoder"))
        #expect(config.value(at: ["model", "backbone"]) == dict(["type": .string("ResNetV1c"), "depth": .int(18)]))
        #expect(config.value(at: ["model", "decode_head"]) == dict(["type": .string("ASPPHead"),
                                                                    "dilations": .list([.int(1), .int(2)])]))
        #expect(config["crop_size"] == .tuple([.int(512), .int(512)]))
        #expect(config["_base_"] == nil)
    }

    @Test func deleteReplacesTheBaseDict() throws {
        let config = try load("""
            _base_ = 'base.py'
            model = dict(decode_head=dict(_delete_=True, type='EncHead'))
            extra = dict(_delete_=True, a=1)
            """, ["base.py": "model = dict(decode_head=dict(type='PSPHead', pool_scales=(1, 2)))\n"])
        #expect(config.value(at: ["model", "decode_head"]) == dict(["type": .string("EncHead")]))
        #expect(config["extra"] == dict(["_delete_": .bool(true), "a": .int(1)]),
                "a new key keeps _delete_, as mmengine's _merge_a_into_b does")
    }

    @Test func baseVariablesAreReadWithBothSyntaxes() throws {
        let config = try load("""
            _base_ = './base.py'
            a = {{_base_.crop_size}}
            b = [{{ _base_.model.depth }}]
            c = _base_.model.depth
            """, ["base.py": "crop_size = (512, 512)\nmodel = dict(depth=50)\n"])
        #expect(config["a"] == .tuple([.int(512), .int(512)]))
        #expect(config["b"] == .list([.int(50)]))
        #expect(config["c"] == .int(50))
    }

    @Test func duplicateKeysAmongBasesAreAnError() {
        #expect(failure("_base_ = ['a.py', 'b.py']\n", ["a.py": "x = 1\n", "b.py": "x = 2\n"])
                == "main.py:1: bases a.py and b.py both define 'x' "
                + "(mmengine does not allow a duplicate key among bases)")
    }

    @Test func aDictCannotMergeIntoANonDict() {
        #expect(failure("_base_ = 'a.py'\n\nx = dict(k=1)\n", ["a.py": "x = [1]\n"]).hasPrefix(
            "main.py:3: 'x' is a dict here but a list in the base"))
    }

    // MARK: - hostile input, each naming its line

    static let hostile: [(source: String, expected: String)] = [
        ("a = 1\nb = __import__('os')\n", "main.py:2: call of '__import__' is not supported"),
        ("a = 1\n\nos.system('ls')\n", "main.py:3: attribute access 'os.system' is not supported"),
        ("x = dict(a=1)\ny = x.a\n", "main.py:2: attribute access 'x.a' is not supported"),
        ("a = 1\nf = lambda: 1\n", "main.py:2: lambda is not supported"),
        ("a = 1\nb = f'{a}'\n", "main.py:2: f-strings are not supported"),
        ("a = [1]\nb = [x for x in a if x]\n", "main.py:2: comprehension with 'if' is not supported"),
        ("a = 1\nb = {x: 1 for x in [1]}\n", "main.py:2: dict keys must be strings"),
        ("a = 1\nb = (x for x in [1])\n", "main.py:2: generator expressions are not supported"),
        ("a = 1\nb = open('/etc/passwd').read()\n", "main.py:2: call of 'open' is not supported"),
        ("import os\n", "main.py:1: import statements are not supported"),
        ("a = 1\nfrom os import path\n", "main.py:2: import statements are not supported"),
        ("a = 1\nb = a * 2\n", "main.py:2: operator '*' is not supported"),
        ("a = [1]\nb = a[0]\n", "main.py:2: subscripts are not supported"),
        ("a = 1\nif a:\n    b = 2\n", "main.py:2: 'if' statements are not supported"),
        ("def f():\n    pass\n", "main.py:1: 'def' statements are not supported"),
        ("a = 1\nwith x as y:\n    pass\n", "main.py:2: 'with' statements are not supported"),
        ("a = 1\nb = 1 if a else 2\n", "main.py:2: conditional expressions are not supported"),
        ("a = 1\nb = c\n", "main.py:2: name 'c' is not defined"),
        ("a = 1\nb = 'x' + 'y'\n", "main.py:2: '+' between a string and a string is not supported"),
        ("a = 1\nb = {1, 2}\n", "main.py:2: set literals are not supported"),
        ("a = 1\n  b = 2\n", "main.py:2: unexpected indentation"),
        ("a = b = 1\n", "main.py:1: chained assignment is not supported"),
        ("a = 99999999999999999999\n", "main.py:1: integer '99999999999999999999' is too large"),
        ("a = 1\nb = '{{_base_.a}}'\n", "main.py:2: {{_base_...}} inside quotes"),
        ("a = 1\nb = '{{$HOME:/x}}'\n", "main.py:2: environment-variable templates {{$NAME:default}} are not"),
        ("a = 1\nb = {{_base_.a}}\n", "main.py:2: _base_.a read, but this config has no _base_"),
        ("a = (1,\n     2\n", "main.py:3: expected ')' but found the end of the file"),
        ("a = 'open\n", "main.py:1: unterminated string"),
    ]

    @Test(arguments: hostile)
    func hostileConfigFailsNamingTheLine(_ source: String, _ expected: String) {
        let message = failure(source)
        #expect(message.hasPrefix(expected), "\(message)")
        #expect(message.contains(" ("), "a hint follows: \(message)")
    }

    @Test func deepNestingFailsWithoutCrashing() throws {
        let deep = "a = 1\nb = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(failure(deep).hasPrefix("main.py:2: expression nested more than 64 levels deep"))
        let minus = "a = 1\nb = " + String(repeating: "-", count: 100_000) + "1\n"
        #expect(failure(minus).hasPrefix("main.py:2: expression nested more than 64 levels deep"))
        let chain = (0..<100).map { $0 == 0 ? "v0 = []" : "v\($0) = [v\($0 - 1)]" }.joined(separator: "\n")
        #expect(failure(chain).hasPrefix("main.py:65: value nested more than 64 levels deep"),
                "nesting through variables is bounded too")
        let long = "a = 0" + String(repeating: " + 1", count: 100_000) + "\n"
        #expect(try load(long)["a"] == .int(100_000), "a long flat sum needs no deep recursion")
    }

    @Test func valuesCannotGrowWithoutBound() {
        var lines = ["v0 = [1, 1, 1, 1, 1, 1, 1, 1]"]
        for i in 1...8 { lines.append("v\(i) = [v\(i - 1) for x in v0]") }
        #expect(failure(lines.joined(separator: "\n")).hasPrefix("main.py:7: value has more than 1048576 items"))
    }

    @Test func fileOverTheSizeCapFails() {
        let big = "a = '" + String(repeating: "x", count: 1 << 20) + "'\n"
        #expect(failure(big) == "main.py: config file is larger than 1048576 bytes (a config is a few KiB of settings)")
    }

    @Test func baseCycleFails() {
        #expect(failure("_base_ = 'a.py'\n", ["a.py": "\n_base_ = 'main.py'\n"])
                == "a.py:2: _base_ cycle: main.py → a.py → main.py (a config cannot inherit from itself)")
        #expect(failure("_base_ = './main.py'\n").hasPrefix("main.py:1: _base_ cycle: main.py → main.py"))
    }

    @Test func longBaseChainFails() {
        var files: [String: String] = [:]
        for i in 0..<20 { files["b\(i).py"] = "_base_ = 'b\(i + 1).py'\n" }
        files["b20.py"] = "x = 1\n"
        #expect(failure("_base_ = 'b0.py'\n", files).hasPrefix("b14.py:1: _base_ chain deeper than 16 files"))
    }

    @Test func predefinedVariablesAreReplacedInStrings() throws {
        let config = try load("work_dir = './work_dirs/{{ fileBasenameNoExtension }}{{fileExtname}}'\n")
        #expect(config["work_dir"] == .string("./work_dirs/main.py"))
    }

    @Test func baseOutsideOrMissingFails() {
        #expect(failure("a = 1\n_base_ = 'missing.py'\n").hasPrefix("main.py:2: base 'missing.py' not found"))
        #expect(failure("_base_ = '/etc/passwd.py'\n").hasPrefix("main.py:1: base '/etc/passwd.py' must be relative"))
        #expect(failure("_base_ = '../../../etc/passwd'\n").hasPrefix("main.py:1: base '../../../etc/passwd' must"))
        #expect(failure("_base_ = 'mmdet::models/x.py'\n").hasPrefix("main.py:1: package-scoped base"))
        #expect(failure("_base_ = 1\n").hasPrefix("main.py:1: _base_ must be a path or a list of paths"))
    }

    @Test func configTextMustNotHaveBases() throws {
        #expect(throws: PipelineError.self) { try MMEngineConfig.parse(text: "_base_ = 'a.py'\n", source: "meta.cfg") }
        #expect(try MMEngineConfig.parse(text: "a = dict(b=1)\n", source: "meta.cfg")["a"] == dict(["b": .int(1)]))
    }
}
