import Foundation

/// One token of a config file, with the line it starts on (1-based).
struct ConfigToken {
    enum Kind: Equatable {
        case name(String)
        case int(Int)
        case float(Double)
        case string(String)
        /// mmengine's `{{_base_.a.b}}` (written outside quotes): the path after `_base_`.
        case baseReference([String])
        /// Punctuation and operators, longest match (`(`, `,`, `=`, `**`, `+=`, ...).
        case symbol(String)
        /// The end of a logical line (outside brackets).
        case newline
        case end
    }

    var kind: Kind
    var line: Int
    /// True for a logical line's first token when it does not start in the first column.
    var indented = false
}

/// Splits config text into tokens as Python's tokenizer does for the subset AerialSeg reads:
/// comments, line continuation inside brackets and after `\`, string prefixes and escapes,
/// implicit concatenation is left to the parser. Errors name the line.
struct ConfigLexer {
    private let bytes: [UInt8]
    private let source: String
    /// Replacements for mmengine's predefined variables in strings (`{{ fileDirname }}`, ...).
    private let predefined: [String: String]
    private var position = 0
    private var line = 1
    private var depth = 0
    private var atLineStart = true
    private var tokens: [ConfigToken] = []

    init(text: String, source: String, predefined: [String: String]) {
        self.bytes = Array(text.utf8)
        self.source = source
        self.predefined = predefined
    }

    /// mmengine's predefined variables for a config file at `path` (`Config._substitute_predefined_vars`).
    static func predefinedVariables(path: String) -> [String: String] {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        let base = absolute.lastPathComponent
        let ext = absolute.pathExtension.isEmpty ? "" : "." + absolute.pathExtension
        return ["fileDirname": absolute.deletingLastPathComponent().path, "fileBasename": base,
                "fileBasenameNoExtension": String(base.dropLast(ext.count)), "fileExtname": ext]
    }

    mutating func tokenize() throws -> [ConfigToken] {
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\n"):
                newline()
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), 0x0C:
                position += 1
            case UInt8(ascii: "#"):
                while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
            case UInt8(ascii: "\\"):
                guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n")
                        || (bytes[position + 1] == UInt8(ascii: "\r") && position + 2 < bytes.count
                            && bytes[position + 2] == UInt8(ascii: "\n")) else {
                    throw error("stray backslash", "a backslash continues a line only at its end")
                }
                position += bytes[position + 1] == UInt8(ascii: "\n") ? 2 : 3
                line += 1
            default:
                try token(startingWith: byte)
            }
        }
        newline()
        tokens.append(ConfigToken(kind: .end, line: line))
        return tokens
    }

    private mutating func newline() {
        if depth == 0, let last = tokens.last, last.kind != .newline {
            tokens.append(ConfigToken(kind: .newline, line: line))
        }
        if position < bytes.count { position += 1; line += 1 }
        if depth == 0 { atLineStart = true }
    }

    private mutating func emit(_ kind: ConfigToken.Kind, line startLine: Int, column: Bool) {
        tokens.append(ConfigToken(kind: kind, line: startLine, indented: atLineStart && column))
        atLineStart = false
    }

    private mutating func token(startingWith byte: UInt8) throws {
        let startLine = line
        let indented = depth == 0 && atLineStart && position > 0 && bytes[position - 1] != UInt8(ascii: "\n")
        if isIdentifierStart(byte) {
            let start = position
            while position < bytes.count && isIdentifierPart(bytes[position]) { position += 1 }
            let word = String(decoding: bytes[start..<position], as: UTF8.self)
            if position < bytes.count, bytes[position] == UInt8(ascii: "'") || bytes[position] == UInt8(ascii: "\""),
               word.count <= 2, word.lowercased().allSatisfy({ "rubf".contains($0) }) {
                emit(.string(try string(prefix: word.lowercased())), line: startLine, column: indented)
            } else {
                emit(.name(word), line: startLine, column: indented)
            }
        } else if isDigit(byte) || (byte == UInt8(ascii: ".") && position + 1 < bytes.count
                                     && isDigit(bytes[position + 1])) {
            emit(try number(), line: startLine, column: indented)
        } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
            emit(.string(try string(prefix: "")), line: startLine, column: indented)
        } else if byte == UInt8(ascii: "{"), let path = try baseReference() {
            emit(.baseReference(path), line: startLine, column: indented)
        } else if byte >= 0x80 {
            throw error("non-ASCII character outside a string", "names and operators are ASCII in config files")
        } else {
            let symbol = self.symbol()
            switch symbol {
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth = max(0, depth - 1)
            default: break
            }
            emit(.symbol(symbol), line: startLine, column: indented)
        }
    }

    private mutating func symbol() -> String {
        let threes = ["**=", "//=", ">>=", "<<=", "..."]
        let twos = ["**", "//", "==", "!=", "<=", ">=", "->", ":=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
                    "@=", "<<", ">>"]
        for (length, candidates) in [(3, threes), (2, twos)] where position + length <= bytes.count {
            let text = String(decoding: bytes[position..<position + length], as: UTF8.self)
            if candidates.contains(text) { position += length; return text }
        }
        position += 1
        return String(UnicodeScalar(bytes[position - 1]))
    }

    /// `{{ _base_.a.b }}` at the cursor (mmengine's regex `\{\{\s*_base_\.([\w\.]+)\s*\}\}`), or nil.
    private mutating func baseReference() throws -> [String]? {
        guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "{") else { return nil }
        var cursor = position + 2
        func skipSpaces() { while cursor < bytes.count && isSpace(bytes[cursor]) { cursor += 1 } }
        skipSpaces()
        if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "$") || (cursor + 1 < bytes.count
            && (bytes[cursor] == UInt8(ascii: "'") || bytes[cursor] == UInt8(ascii: "\""))
            && bytes[cursor + 1] == UInt8(ascii: "$")) {
            throw error("environment-variable templates {{$NAME:default}} are not supported",
                        "write the value itself; the imported pipeline must not depend on the environment")
        }
        let prefix = Array("_base_.".utf8)
        guard cursor + prefix.count <= bytes.count, Array(bytes[cursor..<cursor + prefix.count]) == prefix else {
            return nil
        }
        cursor += prefix.count
        let start = cursor
        while cursor < bytes.count && (isIdentifierPart(bytes[cursor]) || bytes[cursor] == UInt8(ascii: ".")) {
            cursor += 1
        }
        let path = String(decoding: bytes[start..<cursor], as: UTF8.self)
        skipSpaces()
        guard cursor + 1 < bytes.count, bytes[cursor] == UInt8(ascii: "}"), bytes[cursor + 1] == UInt8(ascii: "}"),
              !path.isEmpty else {
            throw error("malformed base-variable reference", "write {{_base_.name}} or {{_base_.name.key}}")
        }
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: \.isEmpty) else {
            throw error("malformed base-variable reference {{_base_.\(path)}}", "write {{_base_.name.key}}")
        }
        position = cursor + 2
        return parts
    }

    private mutating func number() throws -> ConfigToken.Kind {
        let start = position
        var isFloat = false
        func digits() {
            while position < bytes.count && (isDigit(bytes[position]) || bytes[position] == UInt8(ascii: "_")) {
                position += 1
            }
        }
        digits()
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") { isFloat = true; position += 1; digits() }
        if position < bytes.count && (bytes[position] | 0x20) == UInt8(ascii: "e") {
            isFloat = true
            position += 1
            if position < bytes.count, [UInt8(ascii: "+"), UInt8(ascii: "-")].contains(bytes[position]) {
                position += 1
            }
            digits()
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if position < bytes.count && isIdentifierPart(bytes[position]) {
            throw error("unsupported number literal starting '\(text)'", "write decimal numbers such as 512 or 1e-4")
        }
        let plain = text.replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let value = Double(plain), value.isFinite else {
                throw error("malformed number '\(text)'", "write decimal numbers such as 0.5 or 1e-4")
            }
            return .float(value)
        }
        if plain.count > 1 && plain.hasPrefix("0") && plain.contains(where: { $0 != "0" }) {
            throw error("integer '\(text)' has a leading zero", "Python 3 does not allow it; write \(Int(plain) ?? 0)")
        }
        guard let value = Int(plain) else {
            throw error("integer '\(text)' is too large", "integers must fit in 64 bits")
        }
        return .int(value)
    }

    private mutating func string(prefix: String) throws -> String {
        if prefix.contains("f") {
            throw error("f-strings are not supported", "write a plain string; config values are not computed")
        }
        if prefix.contains("b") { throw error("bytes literals are not supported", "write a plain string") }
        let raw = prefix.contains("r")
        let quote = bytes[position]
        let triple = position + 2 < bytes.count && bytes[position + 1] == quote && bytes[position + 2] == quote
        position += triple ? 3 : 1
        var value: [UInt8] = []
        while true {
            guard position < bytes.count else {
                throw error("unterminated string", "close it with the same quote it opens with")
            }
            let byte = bytes[position]
            if byte == quote && (!triple || (position + 2 < bytes.count && bytes[position + 1] == quote
                                             && bytes[position + 2] == quote)) {
                position += triple ? 3 : 1
                break
            }
            if byte == UInt8(ascii: "\n") {
                guard triple else { throw error("unterminated string", "close it on the same line") }
                line += 1
            }
            if byte == UInt8(ascii: "\\") && position + 1 < bytes.count {
                if raw {
                    value += [byte, bytes[position + 1]]
                    if bytes[position + 1] == UInt8(ascii: "\n") { line += 1 }
                    position += 2
                } else {
                    value += try escape()
                }
                continue
            }
            value.append(byte)
            position += 1
        }
        guard let text = String(validating: value, as: UTF8.self) else {
            throw error("string is not valid UTF-8", "save the config as UTF-8")
        }
        return try substituteTemplates(text)
    }

    /// The escape at the cursor (a backslash), decoded.
    private mutating func escape() throws -> [UInt8] {
        let next = bytes[position + 1]
        position += 2
        switch next {
        case UInt8(ascii: "\n"): line += 1; return []
        case UInt8(ascii: "n"): return [0x0A]
        case UInt8(ascii: "t"): return [0x09]
        case UInt8(ascii: "r"): return [0x0D]
        case UInt8(ascii: "a"): return [0x07]
        case UInt8(ascii: "b"): return [0x08]
        case UInt8(ascii: "f"): return [0x0C]
        case UInt8(ascii: "v"): return [0x0B]
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): return [next]
        case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
            let length = next == UInt8(ascii: "x") ? 2 : next == UInt8(ascii: "u") ? 4 : 8
            guard position + length <= bytes.count,
                  let code = UInt32(String(decoding: bytes[position..<position + length], as: UTF8.self), radix: 16),
                  let scalar = UnicodeScalar(code) else {
                throw error("malformed \\\(UnicodeScalar(next)) escape", "give \(length) hex digits")
            }
            position += length
            return Array(String(Character(scalar)).utf8)
        case UInt8(ascii: "0")...UInt8(ascii: "7"), UInt8(ascii: "N"):
            throw error("unsupported string escape \\\(UnicodeScalar(next))",
                        "use \\n, \\t, \\\\, \\' or \\x.. escapes")
        default:
            return [UInt8(ascii: "\\"), next]  // Python keeps unknown escapes as they are
        }
    }

    /// mmengine's text templates inside a string: predefined variables are replaced as mmengine does;
    /// `{{_base_...}}` and `{{$ENV}}` inside quotes are refused (mmengine would leave a placeholder
    /// string or read the environment).
    private func substituteTemplates(_ text: String) throws -> String {
        guard text.contains("{{") else { return text }
        var result = text
        for (name, value) in predefined {
            let pattern = "\\{\\{\\s*" + name + "\\s*\\}\\}"
            result = result.replacingOccurrences(of: pattern, with: NSRegularExpression.escapedTemplate(for: value),
                                                 options: .regularExpression)
        }
        if result.range(of: "\\{\\{\\s*_base_\\.", options: .regularExpression) != nil {
            throw error("{{_base_...}} inside quotes",
                        "mmengine replaces it only outside quotes: write {{_base_.name}}")
        }
        if result.range(of: "\\{\\{['\"]?\\s*\\$", options: .regularExpression) != nil {
            throw error("environment-variable templates {{$NAME:default}} are not supported",
                        "write the value itself; the imported pipeline must not depend on the environment")
        }
        return result
    }

    private func error(_ what: String, _ hint: String) -> PipelineError {
        PipelineError(path: "\(source):\(line)", reason: what, hint: hint)
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
private func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }
private func isIdentifierStart(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "_")
}
private func isIdentifierPart(_ byte: UInt8) -> Bool { isIdentifierStart(byte) || isDigit(byte) }
