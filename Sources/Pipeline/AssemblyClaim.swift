import Foundation
import GeoIO

/// The right to assemble one input's outputs, taken by one of the processes of a sharded job.
///
/// Shards share an output folder on a cluster file system (NFS, Lustre, CephFS), so the claim uses
/// only what is atomic there: the owner ("host pid") is written to a uniquely named file, which is
/// then hard-linked to `assembly.claim`; the link succeeded when the unique file's link count is 2
/// (the NFS-safe lock-file recipe of open(2)'s O_EXCL note: a lost reply cannot fake success).
/// No fcntl locks. A claim left by a dead process on this host is taken over; one of another host
/// is not (it cannot be checked), and `--assemble-only` takes any claim over.
struct AssemblyClaim {
    let path: String

    enum Outcome {
        case acquired(AssemblyClaim)
        /// Held by another process: its "host pid".
        case heldBy(String)
    }

    static func take(in folder: URL, force: Bool) throws -> Outcome {
        let path = folder.appendingPathComponent("assembly.claim").path
        let owner = WorkFolder.processTag
        let unique = path + ".\(owner).tmp"
        defer { unlink(unique) }
        let holder = Data("\(WorkFolder.hostName) \(getpid())\n".utf8)
        guard FileManager.default.createFile(atPath: unique, contents: holder) else {
            throw GeoIOError(.writeFailed, path: path, message: "cannot create the assembly claim",
                             hint: "check the disk")
        }
        for attempt in 0..<2 {
            _ = link(unique, path)
            var info = stat()
            if stat(unique, &info) == 0, info.st_nlink == 2 { return .acquired(AssemblyClaim(path: path)) }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            guard attempt == 0, force || isStale(holder) else { return .heldBy(holder) }
            unlink(path)
        }
        return .heldBy("?")
    }

    /// A claim of this host whose process is gone.
    private static func isStale(_ holder: String) -> Bool {
        let parts = holder.split(separator: " ")
        guard parts.count == 2, String(parts[0]) == WorkFolder.hostName, let pid = Int32(parts[1]) else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    func release() { unlink(path) }
}

extension WorkFolder {
    static var hostName: String { StagedOutput.hostName }

    /// "host.pid": makes temporary names unique across the processes and machines sharing a folder.
    static var processTag: String { "\(hostName).\(getpid())" }
}
