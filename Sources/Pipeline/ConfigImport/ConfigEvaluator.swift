/// Turns the assignments of one config file into its variables, in order.
///
/// A name is replaced by the value it was last given above (Python's sequential module scope);
/// `_base_.x` and `{{_base_.x}}` by the merged bases' value. Every value is measured as it is built
/// and refused past `ConfigLimits`, so no input can make later steps recurse or allocate without bound.
struct ConfigEvaluator {
    private let source: String
    private let base: ConfigDict?
    private let limits: ConfigLimits
    private var variables = ConfigDict()
    private var sizes: [String: ValueSize] = [:]
    /// Comprehension variables in scope (a few at most), looked up before `variables`; kept apart so
    /// that entering a comprehension does not copy the file's variables.
    private var locals: [String: (value: ConfigValue, size: ValueSize)] = [:]
    /// Line of each variable's last assignment, for errors found after evaluation (merging).
    private(set) var lines: [String: Int] = [:]

    /// `base` is nil for a file without `_base_`.
    init(source: String, base: ConfigDict?, limits: ConfigLimits) {
        self.source = source
        self.base = base
        self.limits = limits
    }

    /// Evaluates `assignments` (without those to `_base_`) and returns the file's variables.
    mutating func run(_ assignments: [ConfigAssignment]) throws -> ConfigDict {
        for assignment in assignments {
            let (value, size) = try evaluate(assignment.value)
            variables[assignment.name] = value
            sizes[assignment.name] = size
            lines[assignment.name] = assignment.line
        }
        return variables
    }

    /// Evaluates one expression against the variables so far.
    func evaluate(_ expr: ConfigExpr) throws -> (ConfigValue, ValueSize) {
        switch expr.kind {
        case .literal(let value):
            return (value, .scalar)
        case .name(let name):
            if let local = locals[name] { return local }
            if name == "_base_" { return try baseValue([], line: expr.line) }
            guard let value = variables[name], let size = sizes[name] else {
                throw error(expr.line, "name '\(name)' is not defined",
                            "assign it above, or read a base's with _base_.\(name)")
            }
            return (value, size)
        case .base(let path):
            return try baseValue(path, line: expr.line)
        case .list(let items), .tuple(let items):
            let evaluated = try items.map(evaluate)
            let values = evaluated.map(\.0)
            let size = try checked(.container(evaluated.map(\.1)), line: expr.line)
            if case .list = expr.kind { return (.list(values), size) }
            return (.tuple(values), size)
        case .dict(let entries):
            var dict = ConfigDict()
            var sizes: [String: ValueSize] = [:]
            for (key, valueExpr) in entries {
                let (value, size) = try evaluate(valueExpr)
                dict[key] = value
                sizes[key] = size
            }
            return (.dict(dict), try checked(.container(Array(sizes.values)), line: expr.line))
        case .negate(let operand):
            switch try evaluate(operand).0 {
            case .int(let value): return (.int(-value), .scalar)
            case .float(let value): return (.float(-value), .scalar)
            case let value: throw error(expr.line, "unary minus needs a number, found \(value.kindName)", "")
            }
        case .sum(let first, let rest):
            var total = try evaluate(first).0
            for (plus, operand) in rest {
                total = try add(total, try evaluate(operand).0, plus: plus, line: operand.line)
            }
            return (total, .scalar)
        case .comprehension(let element, let variable, let iterable):
            return try comprehension(element, variable, iterable, line: expr.line)
        }
    }

    private func baseValue(_ path: [String], line: Int) throws -> (ConfigValue, ValueSize) {
        let written = (["_base_"] + path).joined(separator: ".")
        guard let base else {
            throw error(line, "\(written) read, but this config has no _base_", "set _base_ = 'file.py' first")
        }
        guard let value = path.isEmpty ? .dict(base) : base.value(at: path) else {
            throw error(line, "\(written) is not defined by the base configs",
                        "the bases define: \(base.keys.joined(separator: ", "))")
        }
        return (value, try checked(ValueSize.of(value, limits: limits), line: line))
    }

    /// `a + b` or `a - b` on numbers (Python's int and float arithmetic; ints must not overflow).
    private func add(_ a: ConfigValue, _ b: ConfigValue, plus: Bool, line: Int) throws -> ConfigValue {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (result, overflow) = plus ? x.addingReportingOverflow(y) : x.subtractingReportingOverflow(y)
            if overflow { throw error(line, "integer overflow", "integers must fit in 64 bits") }
            return .int(result)
        case (.int(let x), .float(let y)): return .float(plus ? Double(x) + y : Double(x) - y)
        case (.float(let x), .int(let y)): return .float(plus ? x + Double(y) : x - Double(y))
        case (.float(let x), .float(let y)): return .float(plus ? x + y : x - y)
        default:
            throw error(line, "'\(plus ? "+" : "-")' between \(a.kindName) and \(b.kindName) is not supported",
                        "+ and - are read between numbers only")
        }
    }

    private func comprehension(_ element: ConfigExpr, _ variable: String, _ iterable: ConfigExpr,
                               line: Int) throws -> (ConfigValue, ValueSize) {
        let (collection, _) = try evaluate(iterable)
        guard let items = collection.items else {
            throw error(line, "a comprehension needs a list or tuple to iterate, found \(collection.kindName)", "")
        }
        var scope = self  // the loop variable does not leak, as in Python 3
        var values: [ConfigValue] = []
        var total = ValueSize(depth: 1, count: 1)
        for item in items {
            scope.locals[variable] = (item, ValueSize.of(item, limits: limits))
            let (value, size) = try scope.evaluate(element)
            values.append(value)
            total = ValueSize(depth: max(total.depth, size.depth + 1), count: total.count + size.count)
            try checked(total, line: line)
        }
        return (.list(values), total)
    }

    @discardableResult
    private func checked(_ size: ValueSize, line: Int) throws -> ValueSize {
        if size.depth > limits.maxValueDepth {
            throw error(line, "value nested more than \(limits.maxValueDepth) levels deep", "flatten the value")
        }
        if size.count > limits.maxValueCount {
            throw error(line, "value has more than \(limits.maxValueCount) items", "a config holds settings, not data")
        }
        return size
    }

    private func error(_ line: Int, _ what: String, _ hint: String) -> PipelineError {
        PipelineError(path: "\(source):\(line)", reason: what, hint: hint)
    }
}
