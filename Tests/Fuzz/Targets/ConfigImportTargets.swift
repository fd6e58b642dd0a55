// Fuzz target over the mmengine config reader (lexer, parser, evaluator of Sources/Pipeline/ConfigImport):
// config text as `import-config` and `run --checkpoint iter_N.pth` (meta.cfg) read it.

/// The targets, by folder name.
let targets: [String: ([UInt8]) throws -> Void] = [
    "config": { _ = try MMEngineConfig.parse(text: String(decoding: $0, as: UTF8.self), source: "fuzz.py") },
]
