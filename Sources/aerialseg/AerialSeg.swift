import ArgumentParser
import Foundation
import Pipeline
import SegCore

@main
struct AerialSeg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerialseg",
        abstract: "Segment huge aerial orthophotos into georeferenced land-cover maps.",
        subcommands: [Run.self, Serve.self, Info.self, Inspect.self, Bench.self, Tile.self, Evaluate.self,
                      Vectorize.self, ImportConfig.self]
    )

    /// argument-parser's entry point, with its usage errors in the README's form: one line
    /// `aerialseg: error: <what> (<hint>)` and exit 2 (not its several lines and exit 64).
    /// `--help` and `--version` print as usual; errors a command reports itself keep their code.
    static func main() async {
        ProcessMemory.returnLargeBlocksWhenFreed()
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }  // help, version
            let message = message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
            printError("aerialseg: error: \(ErrorLine.capped(message)) (see 'aerialseg help')")
            Foundation.exit(2)
        }
    }
}

extension ComputeBackend: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension PreviewMode: ExpressibleByArgument {}

/// Prints `aerialseg: error: <file>: <what> (<hint>)` on stderr and exits with `code`.
func fail(_ error: any Error, code: Int32 = 2) -> ExitCode {
    printErrorLine(error)
    return ExitCode(code)
}

/// Prints `ErrorLine.of(error)`: `aerialseg: error: <error>` as one line.
func printErrorLine(_ error: any Error) {
    printError(ErrorLine.of(error))
}

/// `1,2,3` → [1, 2, 3]; nil when empty or when an item is not an integer (the CLI's list options).
func parseIntegers(_ text: String) -> [Int]? {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    return values.contains(nil) || values.isEmpty ? nil : values.compactMap { $0 }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Reports on each file: a text block per file, or one JSON array; a file that fails gets its one
/// error line and the others go on; exit code 2 if any failed.
func reportEach<Report: Encodable>(
    _ files: [String], json: Bool, _ make: (String) throws -> Report, describe: (Report) -> String
) throws {
    var reports: [Report] = []
    var failed = false
    for file in files {
        do {
            let report = try make(file)
            if json { reports.append(report) } else { print(describe(report)) }
        } catch {
            printErrorLine(error)
            failed = true
        }
    }
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(reports), as: UTF8.self))
    }
    if failed { throw ExitCode(2) }
}
