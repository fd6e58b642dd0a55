import Foundation

/// A claim on one input's outputs in an output folder (`<output>/.aerialseg-lock-<stem>`), held by a
/// job while it writes its work folder and outputs, so that a second run of the same job (or of
/// another job writing the same names) stops at once with a line naming the holder instead of
/// racing the first one's files.
///
/// NFS-safe without `fcntl` or `flock`: the holder's pid and host are written to a unique file which
/// is then hard-linked to the lock's name (`link(2)` is atomic on NFS, and the link count tells
/// whether it took when the answer was lost). A lock whose holder is on this host and no longer
/// runs (`kill -9`, a crash) is stale and taken over; one held from another host can only be judged
/// by a person, so the error says which file to remove when that run is gone.
final class RunLock {
    /// Who holds a lock: the lock file's JSON.
    struct Holder: Codable, Equatable {
        var pid: Int32
        var host: String
        var since: String

        static var current: Holder {
            var name = [CChar](repeating: 0, count: 256)
            let host = gethostname(&name, name.count) == 0
                ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
            return Holder(pid: getpid(), host: host, since: ISO8601DateFormatter().string(from: Date()))
        }

        /// On this host and its process gone.
        var isStale: Bool { host == Holder.current.host && kill(pid, 0) != 0 && errno == ESRCH }
    }

    let url: URL
    private let holder: Holder
    private var held = true

    static func url(directory: String, names: RunOutputNames) -> URL {
        URL(fileURLWithPath: directory).appendingPathComponent(".aerialseg-lock-\(names.stem)")
    }

    /// Takes the lock of `input`'s outputs in `directory` (which exists), taking over a stale one;
    /// throws naming the holder when another live run has it.
    init(directory: String, input: String) throws {
        url = Self.url(directory: directory, names: RunOutputNames(input: input))
        holder = .current
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let contents = try encoder.encode(holder)
        let unique = url.path + ".\(holder.host).\(holder.pid).\(UUID().uuidString.prefix(8))"
        guard FileManager.default.createFile(atPath: unique, contents: contents) else {
            throw PipelineError(path: directory, reason: "cannot create the lock file \(url.lastPathComponent)",
                                hint: "check free space and permissions")
        }
        defer { unlink(unique) }
        for _ in 0..<4 {
            let linked = link(unique, url.path) == 0
            let failure = errno
            if linked || Self.linkCount(unique) == 2 { return }
            guard failure == EEXIST else {
                throw PipelineError(path: url.path, reason: "cannot take the lock: \(String(cString: strerror(failure)))",
                                    hint: "check permissions of the output folder")
            }
            guard let other = Self.holder(at: url) else { continue }  // gone meanwhile, or being replaced: again
            guard other.isStale else { throw Self.busy(input: input, holder: other, lock: url) }
            Self.removeStale(url, holder: other)
        }
        throw PipelineError(path: url.path, reason: "cannot take the lock: other runs keep taking it",
                            hint: "run one job per output folder at a time")
    }

    deinit { release() }

    /// Gives the lock up (when the file is still this holder's).
    func release() {
        guard held else { return }
        held = false
        if Self.holder(at: url) == holder { unlink(url.path) }
    }

    /// Throws like `init` when another live run holds `input`'s lock in `directory`; takes nothing
    /// (for the up-front checks of `run`).
    static func check(directory: String, input: String) throws {
        let url = Self.url(directory: directory, names: RunOutputNames(input: input))
        if let other = holder(at: url), !other.isStale { throw busy(input: input, holder: other, lock: url) }
    }

    private static func busy(input: String, holder: Holder, lock: URL) -> PipelineError {
        PipelineError(path: input, reason: "another aerialseg run (pid \(holder.pid) on host \(holder.host), since "
                          + "\(holder.since)) is writing its outputs in \(lock.deletingLastPathComponent().path)",
                      hint: "wait for it to finish; if that run is gone, remove \(lock.path)")
    }

    /// The holder a lock file names; nil when there is no lock file. An unreadable one counts as
    /// held by an unknown run on an unknown host (never taken over).
    private static func holder(at url: URL) -> Holder? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return (try? JSONDecoder().decode(Holder.self, from: data))  // not a lock this version wrote: unknown holder
            ?? Holder(pid: 0, host: "unknown", since: "unknown")
    }

    /// Moves a stale lock aside and deletes it if it is still the stale one (another run may have
    /// replaced it between our read and the move: then it is put back).
    private static func removeStale(_ url: URL, holder stale: Holder) {
        let aside = url.path + ".stale.\(getpid()).\(UUID().uuidString.prefix(8))"
        guard rename(url.path, aside) == 0 else { return }
        if Self.holder(at: URL(fileURLWithPath: aside)) != stale { _ = link(aside, url.path) }
        unlink(aside)
    }

    private static func linkCount(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_nlink) : 0
    }
}
