import ArgumentParser
import Pipeline

@main
struct AerialSeg: ParsableCommand {
    func run() throws {}
}
