import Foundation

/// `{"input": "relative/path.tif"}`: a path under `--inputs-root`, resolved so that nothing outside
/// it can be named — no absolute paths, no `..`, no symlink leading out (checked on the real path),
/// and none of the spellings that hide those (percent-encoding, backslashes, NUL, control characters).
/// JSON with invalid UTF-8 (an overlong `.` among them) never decodes, so it is a 400 before this.
enum InputPath {
    /// The real path of `relative` under `root`, or a 403 (outside) / 400 (odd spelling).
    static func resolve(_ relative: String, root: String?) throws -> String {
        let shown = String(relative.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) }
            .prefix(200))
        guard let root else {
            throw APIError(.forbidden, "\(shown): this server reads no paths (it was started without --inputs-root)",
                           hint: "upload the raster as image/tiff or multipart file=")
        }
        guard !relative.isEmpty else {
            throw APIError(.badRequest, "\"input\" is empty", hint: "give a path relative to the server's inputs folder")
        }
        if relative.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            || relative.contains("\\") || relative.contains("%") {
            throw APIError(.badRequest, "\(shown): control characters, backslashes and percent-encoding are not allowed",
                           hint: "give the path as it is, with / between folders")
        }
        if relative.hasPrefix("/") || relative.hasPrefix("~") {
            throw APIError(.forbidden, "\(shown): an absolute path", hint: "give a path relative to the inputs folder")
        }
        if relative.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
            throw APIError(.forbidden, "\(shown): '..' is not allowed", hint: "give a path inside the inputs folder")
        }
        guard let realRoot = realPath(root) else {
            throw APIError(.internalServerError, "\(root): the inputs folder is missing", hint: "check --inputs-root")
        }
        let candidate = realRoot + "/" + relative
        // A file that does not exist is GDAL's to report (422, as `run` would); one that does must
        // really be inside the root, after every symlink.
        guard let real = realPath(candidate) else { return candidate }
        guard real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") else {
            throw APIError(.forbidden, "\(shown): leads outside the inputs folder", hint: "symlinks must stay inside it")
        }
        return real
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
