/// The one line an error is reported as, by `aerialseg` on stderr and by `aerialseg serve` in an
/// answer's `error`: `aerialseg: error: <file>: <what went wrong> (<hint>)`.
public enum ErrorLine {
    /// Longest line, in characters: a message echoing a huge input (a 100,000-deep YAML, a long GDAL
    /// message) is cut in the middle, keeping the file at its start and the hint at its end.
    public static let maxLength = 1000

    /// `aerialseg: error: ` and `error`'s description on one line.
    public static func of(_ error: any Error) -> String { "aerialseg: error: " + capped("\(error)") }

    /// `text` on one line (line breaks become spaces), cut in the middle to at most `maxLength`
    /// characters with `…` and the count of characters left out.
    public static func capped(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
        guard line.count > maxLength else { return line }
        let keep = maxLength / 2 - 20
        return "\(line.prefix(keep)) … [\(line.count - 2 * keep) characters left out] … \(line.suffix(keep))"
    }
}
