import Foundation

/// Files written under a hidden staging folder inside their destination folder and moved into place
/// only when complete, so nothing half-written is ever visible under a final name.
///
/// The staging folder lives in the destination folder (same file system, so `rename(2)` is atomic).
/// `commit()` moves sidecars first (`.aux.xml`, `.dbf`, ...) and the primary files last, so a primary
/// file's appearance means its sidecars are already there. Dropping an uncommitted output removes
/// the staging folder and everything in it.
public final class StagedOutput {
    /// Where the finished files go.
    public let directory: URL
    /// The hidden folder holding files in progress.
    public let staging: URL
    private var finished = false

    /// Creates the staging folder in `directory` (creating `directory` too if needed).
    public init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory)
        let fm = FileManager.default
        try Self.prepareDirectory(directory)
        Self.removeAbandonedStaging(in: self.directory)
        let pid = ProcessInfo.processInfo.processIdentifier
        // The host is part of the name: processes of other machines may share the folder (shards on NFS).
        staging = self.directory.appendingPathComponent(
            ".aerialseg-staging-\(pid)-\(UUID().uuidString.prefix(8))@\(Self.hostName)")
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw GeoIOError(.notWritable, path: directory, message: "cannot create files in the output folder",
                             hint: "check free space and permissions")
        }
    }

    /// Throws `.notWritable` naming `directory` unless it is a writable folder or could be created
    /// (its nearest existing ancestor is a writable folder); creates nothing, so a command can check
    /// its output folder before any other check and still leave nothing behind when one fails.
    public static func checkDirectory(_ directory: String) throws {
        let fm = FileManager.default
        var path = (directory as NSString).standardizingPath
        if !path.hasPrefix("/") { path = (fm.currentDirectoryPath as NSString).appendingPathComponent(path) }
        var isDir: ObjCBool = false
        while !fm.fileExists(atPath: path, isDirectory: &isDir) { path = (path as NSString).deletingLastPathComponent }
        guard isDir.boolValue else {
            let message = path == (directory as NSString).standardizingPath || directory.hasSuffix(path)
                ? "not a folder" : "cannot create the output folder: \(path) is a file"
            throw GeoIOError(.notWritable, path: directory, message: message, hint: "give an output folder")
        }
        guard fm.isWritableFile(atPath: path) else {
            throw GeoIOError(.notWritable, path: directory, message: "the output folder is not writable",
                             hint: "choose another folder or fix its permissions")
        }
    }

    /// Makes sure `directory` is a writable folder, creating it if needed; throws `.notWritable`
    /// naming it otherwise. Commands call it before any work, so an unusable output folder is a
    /// usage error found up front.
    public static func prepareDirectory(_ directory: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw GeoIOError(.notWritable, path: directory, message: "not a folder", hint: "give an output folder")
            }
        } else {
            do {
                try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw GeoIOError(.notWritable, path: directory, message: "cannot create the output folder",
                                 hint: "check that its parent exists and is writable")
            }
        }
        guard fm.isWritableFile(atPath: directory) else {
            throw GeoIOError(.notWritable, path: directory, message: "the output folder is not writable",
                             hint: "choose another folder or fix its permissions")
        }
    }

    /// This machine's name (`gethostname`): tags files that processes of several machines sharing a
    /// folder write (staging folders, shards' claims and temporary files).
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// Removes staging folders left by processes that no longer run (killed jobs).
    static func removeAbandonedStaging(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(".aerialseg-staging-") {
            let pidText = name.dropFirst(".aerialseg-staging-".count).prefix { $0.isNumber }
            // Only this machine's processes can be checked; names without a host are from older versions.
            if let at = name.firstIndex(of: "@"), name[name.index(after: at)...] != hostName { continue }
            guard let pid = Int32(pidText), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    deinit {
        if !finished { try? FileManager.default.removeItem(at: staging) }
    }

    /// Path of `name` inside the staging folder: write there.
    public func stagingPath(_ name: String) -> String { staging.appendingPathComponent(name).path }

    /// Path `name` will have once committed.
    public func finalPath(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Moves every staged file into the destination folder (replacing older files of the same
    /// name), files named in `primaries` last, then removes the staging folder.
    public func commit(primaries: [String]) throws {
        try commitFolder("", primaries: primaries)
        finished = true
        try? FileManager.default.removeItem(at: staging)
    }

    /// Moves the files of staging sub-folder `relative` (recursively; sub-folders are created in the
    /// destination), primaries last.
    private func commitFolder(_ relative: String, primaries: [String]) throws {
        let fm = FileManager.default
        let folder = relative.isEmpty ? staging : staging.appendingPathComponent(relative)
        let names = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
        let ordered = names.filter { !primaries.contains($0) }.sorted() + primaries.filter(names.contains)
        for name in ordered {
            let path = relative.isEmpty ? name : relative + "/" + name
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: stagingPath(path), isDirectory: &isDir), isDir.boolValue {
                do {
                    try fm.createDirectory(atPath: finalPath(path), withIntermediateDirectories: true)
                } catch {
                    discard()
                    throw GeoIOError(.writeFailed, path: finalPath(path), message: "cannot create the folder",
                                     hint: "a file of that name may be in the way")
                }
                try commitFolder(path, primaries: primaries)
                continue
            }
            let to = finalPath(path)
            guard rename(stagingPath(path), to) == 0 else {
                let reason = String(cString: strerror(errno))
                discard()
                throw GeoIOError(.writeFailed, path: to, message: "cannot move the finished file into place: \(reason)",
                                 hint: "check permissions of the output folder")
            }
        }
    }

    /// Removes the staging folder and everything written into it.
    public func discard() {
        finished = true
        try? FileManager.default.removeItem(at: staging)
    }
}
