import Foundation
import GeoIO

/// Turns `--input` arguments (files, folders, glob patterns) into raster paths.
public enum InputExpansion {
    /// File extensions picked up from folders.
    public static let rasterExtensions: Set<String> = ["tif", "tiff", "vrt", "jp2", "img", "png", "jpg", "jpeg"]

    /// The rasters `arguments` name, in order, each once. Folders give their rasters (not hidden,
    /// not recursing) and patterns their matches, both without the files `run` writes
    /// (`RunOutputNames.isRunOutput`: `--input DIR --output DIR` must not read its own outputs);
    /// a file named explicitly is taken as it is. Throws for an unreadable or empty folder, a
    /// pattern matching nothing, and two inputs whose outputs would have the same names.
    public static func expand(_ arguments: [String]) throws -> [String] {
        var paths: [String] = []
        let fm = FileManager.default
        for argument in arguments {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: argument, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    let entries: [String]
                    do {
                        entries = try fm.contentsOfDirectory(atPath: argument)
                    } catch {
                        throw GeoIOError(.fileNotFound, path: argument,
                                         message: "cannot list the folder: \((error as NSError).localizedDescription)",
                                         hint: "check its permissions")
                    }
                    let rasters = entries.filter {
                        rasterExtensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".")
                    }
                    let inputs = rasters.filter { !RunOutputNames.isRunOutput($0) }.sorted()
                    if inputs.isEmpty {
                        throw GeoIOError(.fileNotFound, path: argument,
                                         message: rasters.isEmpty ? "the folder holds no rasters"
                                             : "the folder holds only outputs of aerialseg run",
                                         hint: "expected .tif, .vrt, .jp2, ... files other than *.labels.tif, "
                                             + "*.confidence.tif, *.preview.png")
                    }
                    paths += inputs.map { (argument as NSString).appendingPathComponent($0) }
                } else {
                    paths.append(argument)
                }
            } else if argument.contains(where: { "*?[".contains($0) }) {
                let matches = try globPaths(argument)
                let inputs = matches.filter { !RunOutputNames.isRunOutput(($0 as NSString).lastPathComponent) }
                if inputs.isEmpty {
                    throw GeoIOError(.fileNotFound, path: argument,
                                     message: matches.isEmpty ? "the pattern matches no file"
                                         : "the pattern matches only outputs of aerialseg run",
                                     hint: "check the pattern")
                }
                paths += inputs
            } else {
                paths.append(argument)  // reported as missing by the job, without stopping the others
            }
        }
        var seen = Set<String>()
        let unique = paths.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
        try checkDistinctOutputs(unique)
        return unique
    }

    /// Outputs are named after the input's stem alone (`RunOutputNames`), so two inputs with the
    /// same stem would overwrite each other's outputs: refused, naming both, before any work.
    static func checkDistinctOutputs(_ paths: [String]) throws {
        var first: [String: String] = [:]
        for path in paths {
            let names = RunOutputNames(input: path)
            if let earlier = first[names.stem] {
                throw PipelineError(path: path, reason: "its outputs (\(names.summary)) would overwrite those of "
                                        + "\(earlier): outputs are named after the file name without its extension",
                                    hint: "rename one of them, or run them into separate output folders")
            }
            first[names.stem] = path
        }
    }

    /// The paths matching a glob pattern, sorted; throws when the file system refuses to be read.
    static func globPaths(_ pattern: String) throws -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        switch glob(pattern, GLOB_ERR, nil, &result) {
        case 0: return (0..<Int(result.gl_pathc)).compactMap { i in result.gl_pathv[i].map { String(cString: $0) } }.sorted()
        case GLOB_NOMATCH: return []
        default:
            throw GeoIOError(.fileNotFound, path: pattern, message: "cannot read the folders the pattern names",
                             hint: "check their permissions")
        }
    }
}
