import Foundation
import GeoIO

/// Turns `--input` arguments (files, folders, glob patterns) into raster paths.
public enum InputExpansion {
    /// File extensions picked up from folders.
    public static let rasterExtensions: Set<String> = ["tif", "tiff", "vrt", "jp2", "img", "png", "jpg", "jpeg"]

    public static func expand(_ arguments: [String]) throws -> [String] {
        var paths: [String] = []
        let fm = FileManager.default
        for argument in arguments {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: argument, isDirectory: &isDirectory) {
                if isDirectory.boolValue {
                    let entries = (try? fm.contentsOfDirectory(atPath: argument)) ?? []
                    let rasters = entries.filter {
                        rasterExtensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".")
                    }.sorted()
                    if rasters.isEmpty {
                        throw GeoIOError(.fileNotFound, path: argument, message: "the folder holds no rasters",
                                         hint: "expected .tif, .vrt, .jp2, ... files")
                    }
                    paths += rasters.map { (argument as NSString).appendingPathComponent($0) }
                } else {
                    paths.append(argument)
                }
            } else if argument.contains(where: { "*?[".contains($0) }) {
                let matches = globPaths(argument)
                if matches.isEmpty {
                    throw GeoIOError(.fileNotFound, path: argument, message: "the pattern matches no file", hint: "check the pattern")
                }
                paths += matches
            } else {
                paths.append(argument)  // reported as missing by the job, without stopping the others
            }
        }
        return paths
    }

    static func globPaths(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { i in result.gl_pathv[i].map { String(cString: $0) } }.sorted()
    }
}
