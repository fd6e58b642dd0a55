import Foundation

/// A pipeline file problem. Description: `<file>: <what> (<hint>)`.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public let hint: String
    public var description: String { hint.isEmpty ? "\(path): \(reason)" : "\(path): \(reason) (\(hint))" }

    public init(path: String, reason: String, hint: String) {
        self.path = path
        self.reason = reason
        self.hint = hint
    }
}

/// An error's description on one line (line breaks become spaces).
func oneLine(_ error: any Error) -> String {
    "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
}
