import CGDAL
import Foundation

/// An error from GeoIO: what failed, on which file, and what the user can do about it.
///
/// `description` is the one line the CLI prints after `aerialseg: error: `:
/// `<file>: <what went wrong> (<hint>)`.
public struct GeoIOError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A category of failure. Open struct (like swift-system's `Errno`) so new codes don't break callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let fileNotFound = Code("fileNotFound")
        public static let notARaster = Code("notARaster")
        public static let readFailed = Code("readFailed")
        public static let writeFailed = Code("writeFailed")
        public static let unsupportedFormat = Code("unsupportedFormat")
        public static let invalidArgument = Code("invalidArgument")
        public static let noGeoreferencing = Code("noGeoreferencing")
        public static let notWritable = Code("notWritable")
        public static let unsupportedGrid = Code("unsupportedGrid")
    }

    public let code: Code
    /// The file (or folder) concerned.
    public let path: String
    /// What went wrong, in words.
    public let message: String
    /// What to do about it.
    public let hint: String

    public init(_ code: Code, path: String, message: String, hint: String) {
        self.code = code
        self.path = path
        self.message = message
        self.hint = hint
    }

    public var description: String {
        hint.isEmpty ? "\(path): \(message)" : "\(path): \(message) (\(hint))"
    }
}

/// The last error GDAL recorded on this thread, or nil; resets it.
///
/// The corresponding C functions are `CPLGetLastErrorType`, `CPLGetLastErrorMsg` and `CPLErrorReset`.
func takeLastGDALError() -> String? {
    let type = CPLGetLastErrorType()
    defer { CPLErrorReset() }
    guard type == CE_Failure || type == CE_Fatal else { return nil }
    guard let cMessage = CPLGetLastErrorMsg() else { return "unknown GDAL error" }
    // GDAL's messages may span lines ("Too many threads ... \nTry increasing ..."): one line here.
    let message = String(cString: cMessage).split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    return message.isEmpty ? "unknown GDAL error" : message
}

/// Runs `body` with GDAL's error printing silenced on this thread (handlers are thread-local), so
/// errors are reported once, through `GeoIOError`, and never printed by GDAL itself.
@inline(__always)
func withQuietGDAL<T>(_ body: () throws -> T) rethrows -> T {
    aerialseg_push_quiet_handler()
    CPLErrorReset()
    defer { aerialseg_pop_handler() }
    return try body()
}

/// Builds one `GeoIOError` from GDAL's last error (or `fallback` when GDAL recorded none).
func gdalError(_ code: GeoIOError.Code, path: String, fallback: String, hint: String) -> GeoIOError {
    let message = takeLastGDALError() ?? fallback
    return GeoIOError(code, path: path, message: message, hint: hint)
}


/// Closes a dataset that was written and reports what GDAL said while flushing (e.g. disk full).
/// `GDALClose` returns nothing in GDAL 3.6, so the error is read back from CPLGetLastErrorType/Msg.
func closeWritten(_ handle: GDALDatasetH, path: String) throws {
    let message: String? = withQuietGDAL {
        GDALClose(handle)
        return takeLastGDALError()
    }
    if let message { throw GeoIOError(.writeFailed, path: path, message: message, hint: "is the disk full?") }
}
