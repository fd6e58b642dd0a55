import Foundation

/// Reads mmengine (0.10.7) Python config files without running them: the literal subset mmseg
/// configs are written in (see `ConfigParser`), with mmengine's `_base_` inheritance.
///
/// The rules follow `mmengine.config.Config._file2dict` and `_merge_a_into_b`:
/// - `_base_` is a path or a list of paths relative to the file; the bases are read in order and
///   may not define the same top-level name twice;
/// - the file's own variables may read the merged bases as `_base_.x` or `{{_base_.x}}`;
/// - the file's variables are then merged over the bases: a dict merges key by key, recursively,
///   unless it sets `_delete_=True` (then it replaces the base's dict); any other value (lists too)
///   replaces the base's; names starting with `__` and `_deprecation_` are dropped.
///
/// Hostile input fails with an error naming the file and line: files over 1 MiB, nesting deeper
/// than 64, `_base_` chains longer than 16 or cyclic, more than 256 files, missing bases.
public enum MMEngineConfig {
    /// The merged variables of the config file at `path` and its `_base_` files.
    public static func load(path: String) throws -> ConfigDict {
        var filesRead = 0
        return try load(path: path, chain: [], filesRead: &filesRead, limits: .standard)
    }

    /// The variables of config text without `_base_`, such as mmengine's `Config.pretty_text`
    /// stored in a checkpoint's `meta.cfg`; `source` names it in errors.
    public static func parse(text: String, source: String) throws -> ConfigDict {
        let limits = ConfigLimits.standard
        guard text.utf8.count <= limits.maxFileBytes else {
            throw PipelineError(path: source, reason: "config text is larger than \(limits.maxFileBytes) bytes",
                                hint: "a config is a few KiB of settings")
        }
        let assignments = try statements(text: text, source: source, predefined: [:], limits: limits)
        if let base = assignments.first(where: { $0.name == "_base_" }) {
            throw PipelineError(path: "\(source):\(base.line)", reason: "_base_ in config text",
                                hint: "import the config file instead, so its bases can be found")
        }
        var evaluator = ConfigEvaluator(source: source, base: nil, limits: limits)
        return cleaned(try evaluator.run(assignments))
    }

    static func load(path: String, chain: [String], filesRead: inout Int,
                     limits: ConfigLimits) throws -> ConfigDict {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let text = try read(url, path: path, limits: limits)
        let assignments = try statements(text: text, source: path,
                                         predefined: ConfigLexer.predefinedVariables(path: path), limits: limits)
        let chain = chain + [url.resolvingSymlinksInPath().path]
        filesRead += 1

        var base: ConfigDict?
        let baseAssignments = assignments.filter { $0.name == "_base_" }
        if let first = baseAssignments.first {
            if baseAssignments.count > 1 {
                throw PipelineError(path: "\(path):\(baseAssignments[1].line)", reason: "_base_ assigned twice",
                                    hint: "list all bases in one _base_ = [...]")
            }
            base = try loadBases(of: first, in: path, directory: url.deletingLastPathComponent(), chain: chain,
                                 filesRead: &filesRead, limits: limits)
        }
        var evaluator = ConfigEvaluator(source: path, base: base, limits: limits)
        let own = try evaluator.run(assignments.filter { $0.name != "_base_" })
        guard let base else { return cleaned(own) }
        return cleaned(try merge(own, into: base, keyPath: [], source: path, lines: evaluator.lines))
    }

    /// Reads the bases named by `assignment` in order, refusing top-level names defined by two.
    private static func loadBases(of assignment: ConfigAssignment, in path: String, directory: URL, chain: [String],
                                  filesRead: inout Int, limits: ConfigLimits) throws -> ConfigDict {
        func fail(_ reason: String, _ hint: String) -> PipelineError {
            PipelineError(path: "\(path):\(assignment.line)", reason: reason, hint: hint)
        }
        let (value, _) = try ConfigEvaluator(source: path, base: nil, limits: limits).evaluate(assignment.value)
        let names: [String]
        switch value {
        case .string(let name): names = [name]
        case .list(let items) where items.allSatisfy({ if case .string = $0 { true } else { false } }):
            names = items.map { if case .string(let name) = $0 { name } else { "" } }
        default: throw fail("_base_ must be a path or a list of paths, not \(value.kindName)", "e.g. _base_ = ['a.py']")
        }
        var merged = ConfigDict()
        var definedBy: [String: String] = [:]
        for name in names {
            if name.contains("::") {
                throw fail("package-scoped base '\(name)' is not supported", "copy that config beside this one")
            }
            guard name.hasSuffix(".py"), !name.hasPrefix("/") else {
                throw fail("base '\(name)' must be relative, to a .py file", "e.g. '../_base_/models/fcn.py'")
            }
            let basePath = directory.appendingPathComponent(name).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: basePath) else {
                throw fail("base '\(name)' not found (\(basePath))", "check the path, relative to this file")
            }
            let resolved = URL(fileURLWithPath: basePath).resolvingSymlinksInPath().path
            if let start = chain.firstIndex(of: resolved) {
                let cycle = (chain[start...] + [resolved]).map { ($0 as NSString).lastPathComponent }
                throw fail("_base_ cycle: \(cycle.joined(separator: " → "))", "a config cannot inherit from itself")
            }
            guard chain.count < limits.maxBaseDepth else {
                throw fail("_base_ chain deeper than \(limits.maxBaseDepth) files", "flatten the inheritance")
            }
            guard filesRead < limits.maxFiles else {
                throw fail("more than \(limits.maxFiles) config files read", "flatten the inheritance")
            }
            let variables = try load(path: basePath, chain: chain, filesRead: &filesRead, limits: limits)
            for key in variables.keys {
                if let other = definedBy[key] {
                    throw fail("bases \(other) and \(name) both define '\(key)'",
                               "mmengine does not allow a duplicate key among bases")
                }
                definedBy[key] = name
            }
            for (key, value) in variables { merged[key] = value }
        }
        return merged
    }

    /// mmengine's `_merge_a_into_b`: `child` over `base`, dicts key by key unless `_delete_=True`.
    static func merge(_ child: ConfigDict, into base: ConfigDict, keyPath: [String], source: String,
                      lines: [String: Int]) throws -> ConfigDict {
        var result = base
        for (key, value) in child {
            guard case .dict(var dict) = value, let existing = base[key] else {
                result[key] = value  // new keys (a dict keeps its _delete_, as in mmengine) and non-dicts
                continue
            }
            let path = keyPath + [key]
            let name = path.joined(separator: ".")
            let line = lines[path[0]].map { ":\($0)" } ?? ""
            let delete = dict["_delete_"]
            dict["_delete_"] = nil
            switch delete {
            case nil, .bool(false)?:
                guard case .dict(let existingDict) = existing else {
                    throw PipelineError(path: source + line,
                                        reason: "'\(name)' is a dict here but \(existing.kindName) in the base",
                                        hint: "set _delete_=True in it to replace the base's value")
                }
                result[key] = .dict(try merge(dict, into: existingDict, keyPath: path, source: source, lines: lines))
            case .bool(true)?:
                result[key] = .dict(dict)
            case let other?:
                throw PipelineError(path: source + line, reason: "_delete_ in '\(name)' is \(other.kindName)",
                                    hint: "write _delete_=True")
            }
        }
        return result
    }

    private static func cleaned(_ variables: ConfigDict) -> ConfigDict {
        ConfigDict(variables.entries.filter { !$0.key.hasPrefix("__") && $0.key != "_deprecation_" })
    }

    private static func statements(text: String, source: String, predefined: [String: String],
                                   limits: ConfigLimits) throws -> [ConfigAssignment] {
        var lexer = ConfigLexer(text: text, source: source, predefined: predefined)
        var parser = ConfigParser(tokens: try lexer.tokenize(), source: source, limits: limits)
        return try parser.parse()
    }

    /// The file's text, refusing anything but a regular UTF-8 file within the size limit.
    private static func read(_ url: URL, path: String, limits: ConfigLimits) throws -> String {
        func fail(_ reason: String, _ hint: String) -> PipelineError {
            PipelineError(path: path, reason: reason, hint: hint)
        }
        let resolved = url.resolvingSymlinksInPath().path
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: resolved)
        } catch {
            throw fail("cannot read the config file", "check the path")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw fail("the config is not a regular file", "give a .py config file")
        }
        guard let handle = FileHandle(forReadingAtPath: resolved) else {
            throw fail("cannot open the config file", "check its permissions")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limits.maxFileBytes + 1) ?? Data()
        } catch {
            throw fail("cannot read the config file (\(oneLine(error)))", "check the file")
        }
        guard data.count <= limits.maxFileBytes else {
            throw fail("config file is larger than \(limits.maxFileBytes) bytes", "a config is a few KiB of settings")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw fail("config file is not valid UTF-8", "save it as UTF-8")
        }
        return text
    }
}
