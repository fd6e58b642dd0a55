/// An expression of the config subset, with the line it starts on; evaluated by `ConfigEvaluator`.
struct ConfigExpr {
    indirect enum Kind {
        case literal(ConfigValue)
        /// A variable assigned earlier in the same file.
        case name(String)
        /// `{{_base_.a.b}}` or `_base_.a.b`: a value of the merged base configs (`[]`: `_base_` itself).
        case base([String])
        case list([ConfigExpr])
        case tuple([ConfigExpr])
        /// `dict(k=v, ...)` or `{'k': v, ...}`.
        case dict([(key: String, value: ConfigExpr)])
        case negate(ConfigExpr)
        /// `a + b - c`: numbers only, kept flat so that a long chain needs no deep recursion.
        case sum(ConfigExpr, [(plus: Bool, operand: ConfigExpr)])
        /// `[element for variable in iterable]`, the one comprehension mmseg's dataset configs use.
        case comprehension(element: ConfigExpr, variable: String, iterable: ConfigExpr)
    }

    var kind: Kind
    var line: Int
}

/// `name = expression` at the top of a config file.
struct ConfigAssignment {
    var name: String
    var value: ConfigExpr
    var line: Int
}

/// Parses tokens of the Python literal subset mmseg configs are written in; anything outside it
/// (imports, calls other than `dict`, attribute access other than `_base_.x`, lambdas, operators
/// other than unary minus and `+`/`-` on numbers, subscripts, statements other than assignments and
/// docstrings) is an error naming the line. Nothing is executed.
struct ConfigParser {
    private let tokens: [ConfigToken]
    private let source: String
    private let limits: ConfigLimits
    private var index = 0
    private var nesting = 0

    static let keywords: Set<String> = [
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else",
        "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not",
        "or", "pass", "raise", "return", "try", "while", "with", "yield",
    ]
    /// Names a config may not assign: the literals, `dict` (which the reader does not treat as a variable).
    static let reserved: Set<String> = ["True", "False", "None", "dict"]

    init(tokens: [ConfigToken], source: String, limits: ConfigLimits) {
        self.tokens = tokens
        self.source = source
        self.limits = limits
    }

    mutating func parse() throws -> [ConfigAssignment] {
        var assignments: [ConfigAssignment] = []
        while true {
            let token = tokens[index]
            if token.kind == .end { return assignments }
            if token.kind == .newline { index += 1; continue }
            if token.indented { throw error("unexpected indentation", "statements start in the first column") }
            if case .name(let word) = token.kind, Self.keywords.contains(word) {
                throw word == "import" || word == "from"
                    ? error("import statements are not supported", "configs are read, not run: remove the import")
                    : error("'\(word)' statements are not supported", "a config is a list of name = value lines")
            }
            let target = try expressionList()
            guard symbol("=") else {
                guard case .literal(.string) = target.kind else {
                    if let word = nextSymbol, ["+=", "-=", "*=", "/=", "//=", "%=", "**=", "|=", "&="].contains(word) {
                        throw error("augmented assignment '\(word)' is not supported", "write name = value")
                    }
                    if nextSymbol == ":" {
                        throw error("annotated assignments are not supported", "write name = value")
                    }
                    throw error("expression statements are not supported", "a config is a list of name = value lines")
                }
                try endOfStatement()
                continue  // a docstring
            }
            index += 1
            guard case .name(let name) = target.kind else {
                throw error("can only assign to a single name", "write name = value, one per line")
            }
            if Self.reserved.contains(name) { throw error("cannot assign to '\(name)'", "choose another name") }
            let value = try expressionList()
            if symbol("=") { throw error("chained assignment is not supported", "write one name = value per line") }
            try endOfStatement()
            assignments.append(ConfigAssignment(name: name, value: value, line: token.line))
        }
    }

    private mutating func endOfStatement() throws {
        switch tokens[index].kind {
        case .newline: index += 1
        case .end: break
        case .symbol(";"): throw error("';' is not supported", "write one statement per line")
        default: throw error("unexpected \(describe(tokens[index]))", "one name = value per line")
        }
    }

    /// `a, b` without brackets is a tuple, as in Python.
    private mutating func expressionList() throws -> ConfigExpr {
        let first = try expression()
        guard symbol(",") else { return first }
        var items = [first]
        while symbol(",") {
            index += 1
            if startsExpression { items.append(try expression()) } else { break }
        }
        return ConfigExpr(kind: .tuple(items), line: first.line)
    }

    /// `a + b - c`; `inComprehension` leaves a following `if` to the comprehension's own message.
    private mutating func expression(inComprehension: Bool = false) throws -> ConfigExpr {
        let first = try unary()
        var rest: [(plus: Bool, operand: ConfigExpr)] = []
        while true {
            if symbol("+") || symbol("-") {
                let plus = symbol("+")
                index += 1
                rest.append((plus, try unary()))
                continue
            }
            if let word = nextSymbol, Self.binaryOperators.contains(word) {
                throw error("operator '\(word)' is not supported", "only unary minus, and + or - between numbers")
            }
            if case .name(let word) = tokens[index].kind, ["and", "or", "in", "is", "not"].contains(word) {
                throw error("operator '\(word)' is not supported", "configs hold values, not conditions")
            }
            if case .name("if") = tokens[index].kind, !inComprehension {
                throw error("conditional expressions are not supported", "write the value itself")
            }
            break
        }
        return rest.isEmpty ? first : ConfigExpr(kind: .sum(first, rest), line: first.line)
    }

    private static let binaryOperators: Set<String> = [
        "*", "/", "//", "%", "**", "@", "<<", ">>", "&", "|", "^", "<", ">", "==", "!=", "<=", ">=", ":=",
    ]

    private mutating func unary() throws -> ConfigExpr {
        let line = tokens[index].line
        if symbol("-") {
            index += 1
            return ConfigExpr(kind: .negate(try nested { try $0.unary() }), line: line)
        }
        if let word = nextSymbol, ["+", "~"].contains(word) {
            throw error("unary '\(word)' is not supported", "only unary minus is")
        }
        return try postfix(atom())
    }

    /// Rejects what may follow an atom: calls (other than `dict(...)`, handled in `atom`), attribute
    /// access (other than `_base_.x`) and subscripts.
    private mutating func postfix(_ atom: ConfigExpr) throws -> ConfigExpr {
        let name: String? = if case .name(let name) = atom.kind { name } else { nil }
        if symbol("."), name == "_base_" {
            var path: [String] = []
            while symbol(".") {
                index += 1
                guard case .name(let key) = tokens[index].kind else {
                    throw error("expected a name after '.'", "write _base_.name")
                }
                path.append(key)
                index += 1
            }
            return try postfix(ConfigExpr(kind: .base(path), line: atom.line))
        }
        if symbol(".") {
            let attribute: String = if case .name(let word) = tokens[index + 1].kind { word } else { "" }
            throw error("attribute access '\(name ?? "<value>").\(attribute)' is not supported",
                        "only _base_.name reads another config's variable; nothing is imported or run")
        }
        if symbol("(") {
            throw error(name.map { "call of '\($0)' is not supported" } ?? "calls are not supported",
                        "only dict(...) is read; configs are not run")
        }
        if symbol("[") { throw error("subscripts are not supported", "write the value itself") }
        return atom
    }

    private mutating func atom() throws -> ConfigExpr {
        let token = tokens[index]
        switch token.kind {
        case .int(let value):
            index += 1
            return ConfigExpr(kind: .literal(.int(value)), line: token.line)
        case .float(let value):
            index += 1
            return ConfigExpr(kind: .literal(.float(value)), line: token.line)
        case .string:
            var text = ""
            while case .string(let part) = tokens[index].kind { text += part; index += 1 }  // implicit concatenation
            return ConfigExpr(kind: .literal(.string(text)), line: token.line)
        case .baseReference(let path):
            index += 1
            return ConfigExpr(kind: .base(path), line: token.line)
        case .name(let word):
            index += 1
            switch word {
            case "True": return ConfigExpr(kind: .literal(.bool(true)), line: token.line)
            case "False": return ConfigExpr(kind: .literal(.bool(false)), line: token.line)
            case "None": return ConfigExpr(kind: .literal(.none), line: token.line)
            case "dict" where symbol("("): return try nested { try $0.dictCall(line: token.line) }
            case "lambda": index -= 1; throw error("lambda is not supported", "configs hold values, not functions")
            default:
                if Self.keywords.contains(word) {
                    index -= 1
                    throw error("'\(word)' is not supported here", "write a value")
                }
                return ConfigExpr(kind: .name(word), line: token.line)
            }
        case .symbol("("): return try nested { try $0.parenthesised() }
        case .symbol("["): return try nested { try $0.list() }
        case .symbol("{"): return try nested { try $0.dictLiteral() }
        default:
            throw error("unexpected \(describe(token))", "expected a value")
        }
    }

    /// `( ... )`: a parenthesised value or a tuple.
    private mutating func parenthesised() throws -> ConfigExpr {
        let line = tokens[index].line
        index += 1
        var items: [ConfigExpr] = []
        var sawComma = false
        while !symbol(")") {
            items.append(try expression())
            if case .name("for") = tokens[index].kind {
                throw error("generator expressions are not supported", "write the list itself")
            }
            if symbol(",") { sawComma = true; index += 1 } else { try expect(")") }
        }
        index += 1
        if items.count == 1 && !sawComma { return items[0] }
        return ConfigExpr(kind: .tuple(items), line: line)
    }

    /// `[a, b, ...]` or `[element for name in iterable]`.
    private mutating func list() throws -> ConfigExpr {
        let line = tokens[index].line
        index += 1
        var items: [ConfigExpr] = []
        while !symbol("]") {
            items.append(try expression())
            if items.count == 1, case .name("for") = tokens[index].kind {
                return try comprehension(element: items[0], line: line)
            }
            if symbol(",") { index += 1 } else { try expect("]") }
        }
        index += 1
        return ConfigExpr(kind: .list(items), line: line)
    }

    private mutating func comprehension(element: ConfigExpr, line: Int) throws -> ConfigExpr {
        index += 1  // for
        guard case .name(let variable) = tokens[index].kind, !Self.keywords.contains(variable),
              !Self.reserved.contains(variable), case .name("in") = tokens[index + 1].kind else {
            throw error("comprehension must read [value for name in list]", "one plain name after 'for'")
        }
        index += 2
        let iterable = try expression(inComprehension: true)
        if case .name(let word) = tokens[index].kind, word == "if" || word == "for" {
            throw error("comprehension with '\(word)' is not supported", "only [value for name in list] is read")
        }
        try expect("]")
        index += 1
        return ConfigExpr(kind: .comprehension(element: element, variable: variable, iterable: iterable), line: line)
    }

    /// `dict(key=value, ...)`, at the `(`.
    private mutating func dictCall(line: Int) throws -> ConfigExpr {
        index += 1
        var entries: [(key: String, value: ConfigExpr)] = []
        var seen: Set<String> = []
        while !symbol(")") {
            guard case .name(let key) = tokens[index].kind, !Self.keywords.contains(key),
                  case .symbol("=") = tokens[index + 1].kind else {
                if symbol("**") { throw error("dict(**...) is not supported", "write the keys out") }
                throw error("dict(...) takes only key=value arguments", "write dict(key=value, ...)")
            }
            guard seen.insert(key).inserted else {
                throw error("keyword argument '\(key)' repeated", "give each key once")
            }
            index += 2
            entries.append((key, try expression()))
            if symbol(",") { index += 1 } else { try expect(")") }
        }
        index += 1
        return ConfigExpr(kind: .dict(entries), line: line)
    }

    /// `{'key': value, ...}`; keys are string literals (a later duplicate wins, as in Python).
    private mutating func dictLiteral() throws -> ConfigExpr {
        let line = tokens[index].line
        index += 1
        var entries: [(key: String, value: ConfigExpr)] = []
        while !symbol("}") {
            if symbol("**") { throw error("{**...} is not supported", "write the keys out") }
            let key = try expression()
            if !symbol(":") {
                throw error("set literals are not supported", "use a list [...] or a dict {'key': value}")
            }
            guard case .literal(.string(let text)) = key.kind else {
                throw error("dict keys must be strings", "write {'key': value}")
            }
            index += 1
            entries.append((text, try expression()))
            if case .name("for") = tokens[index].kind {
                throw error("dict comprehensions are not supported", "write the dict itself")
            }
            if symbol(",") { index += 1 } else { try expect("}") }
        }
        index += 1
        return ConfigExpr(kind: .dict(entries), line: line)
    }

    /// Runs `body` one bracket level deeper, refusing nesting past the limit before recursing.
    private mutating func nested(_ body: (inout ConfigParser) throws -> ConfigExpr) throws -> ConfigExpr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > limits.maxNesting {
            throw error("expression nested more than \(limits.maxNesting) levels deep", "flatten the value")
        }
        return try body(&self)
    }

    private var nextSymbol: String? {
        if case .symbol(let text) = tokens[index].kind { return text }
        return nil
    }

    private func symbol(_ text: String) -> Bool { nextSymbol == text }

    private var startsExpression: Bool {
        switch tokens[index].kind {
        case .newline, .end: return false
        case .symbol(let text): return ["(", "[", "{", "-"].contains(text)
        default: return true
        }
    }

    private func expect(_ text: String) throws {
        guard symbol(text) else {
            throw error("expected '\(text)' but found \(describe(tokens[index]))", "check the brackets and commas")
        }
    }

    private func describe(_ token: ConfigToken) -> String {
        switch token.kind {
        case .name(let word): return "'\(word)'"
        case .int(let value): return "\(value)"
        case .float(let value): return "\(value)"
        case .string: return "a string"
        case .baseReference: return "{{_base_...}}"
        case .symbol(let text): return "'\(text)'"
        case .newline: return "the end of the line"
        case .end: return "the end of the file"
        }
    }

    private func error(_ what: String, _ hint: String) -> PipelineError {
        PipelineError(path: "\(source):\(tokens[index].line)", reason: what, hint: hint)
    }
}
