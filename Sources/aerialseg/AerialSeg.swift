import ArgumentParser
import Foundation
import Pipeline

@main
struct AerialSeg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerialseg",
        abstract: "Segment huge aerial orthophotos into georeferenced land-cover maps.",
        subcommands: [Run.self, Info.self, Inspect.self, Bench.self]
    )
}

/// Prints `aerialseg: error: <file>: <what> (<hint>)` on stderr and exits with `code`.
func fail(_ error: any Error, code: Int32 = 2) -> ExitCode {
    printError("aerialseg: error: \(error)")
    return ExitCode(code)
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
