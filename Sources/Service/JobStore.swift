import Foundation
import Logging

/// Job state on disk, one folder per job, so that it survives a crash:
///
/// ```
/// <data>/jobs/<id>/job.json   the JobRecord, rewritten by write-to-temporary + rename(2)
/// <data>/jobs/<id>/input/     an uploaded raster (jobs on --inputs-root files have none)
/// <data>/jobs/<id>/out/       SegmentationJob's output folder (its resumable work folder inside)
/// ```
///
/// JSON files rather than a database: one process writes them, a job changes state a handful of
/// times, and listing reads one small file per job at start; a rename is atomic, so a reader never
/// sees half a record. A folder without `job.json` is an upload that never became a job (the server
/// died while receiving it) and is removed at start.
actor JobStore {
    let root: URL
    private var records: [UUID: JobRecord] = [:]
    private let logger: Logger

    /// Opens (creating) `<data>/jobs` and reads every job in it.
    init(dataDirectory: String, logger: Logger) throws {
        root = URL(fileURLWithPath: dataDirectory).appendingPathComponent("jobs")
        self.logger = logger
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw APIError(.internalServerError, "\(dataDirectory): cannot create the data folder",
                           hint: "check that its parent exists and is writable")
        }
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: root.path) {
            let folder = root.appendingPathComponent(name)
            guard let id = UUID(uuidString: name) else { continue }
            let file = folder.appendingPathComponent("job.json")
            guard let data = fm.contents(atPath: file.path) else {
                try? fm.removeItem(at: folder)  // an upload the server died receiving; nothing refers to it
                continue
            }
            do {
                records[id] = try JSONDecoder.api.decode(JobRecord.self, from: data)
            } catch {
                logger.error("unreadable job record, left as it is", metadata: ["file": "\(file.path)",
                                                                                 "error": "\(error)"])
            }
        }
    }

    nonisolated func folder(_ id: UUID) -> URL { root.appendingPathComponent(id.uuidString.lowercased()) }
    nonisolated func inputFolder(_ id: UUID) -> URL { folder(id).appendingPathComponent("input") }
    nonisolated func outputFolder(_ id: UUID) -> URL { folder(id).appendingPathComponent("out") }

    func record(_ id: UUID) -> JobRecord? { records[id] }

    /// All jobs, newest first.
    func all() -> [JobRecord] {
        records.values.sorted { ($0.createdAt, $0.id.uuidString) > ($1.createdAt, $1.id.uuidString) }
    }

    /// Stores a new or changed record, on disk first.
    func save(_ record: JobRecord) throws {
        try FileManager.default.createDirectory(at: folder(record.id), withIntermediateDirectories: true)
        let final = folder(record.id).appendingPathComponent("job.json")
        let temporary = folder(record.id).appendingPathComponent("job.json.tmp")
        try JSONEncoder.api.encode(record).write(to: temporary)
        guard rename(temporary.path, final.path) == 0 else {
            throw APIError(.internalServerError, "\(final.path): cannot save the job: \(String(cString: strerror(errno)))",
                           hint: "check the data folder's free space and permissions")
        }
        records[record.id] = record
    }

    /// Changes a record with `change` and saves it; returns the new record (nil for an unknown id).
    @discardableResult
    func update(_ id: UUID, _ change: @Sendable (inout JobRecord) -> Void) throws -> JobRecord? {
        guard var record = records[id] else { return nil }
        change(&record)
        try save(record)
        return record
    }

    /// Removes a job and all its files (the record first, so a crash midway leaves an orphan folder
    /// that the next start removes, never a record without files).
    func remove(_ id: UUID) throws {
        let fm = FileManager.default
        let file = folder(id).appendingPathComponent("job.json")
        if fm.fileExists(atPath: file.path) { try fm.removeItem(at: file) }
        records[id] = nil
        if fm.fileExists(atPath: folder(id).path) { try fm.removeItem(at: folder(id)) }
    }
}
