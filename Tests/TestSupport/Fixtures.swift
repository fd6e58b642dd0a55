import Foundation

/// Where test data lives.
///
/// `Tests/Fixtures/` travels with the project; `../shared/` (rasters, mmseg oracle fixtures) is
/// beside the clone for developers and CI but not for users who clone only the project. Tests
/// over shared material carry `.enabled(if: Fixtures.hasShared(...))`, so the runner reports them
/// as skipped, and read it with `requireShared`; `shared(...)` is for optional extra inputs.
public enum Fixtures {
    /// The package root (the folder holding Package.swift), found from this source file.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// A file under `Tests/Fixtures/`.
    public static func local(_ relative: String) -> URL {
        packageRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative)
    }

    /// The `../shared` folder beside the project, or `AERIALSEG_SHARED` if set; nil when absent.
    public static let sharedRoot: URL? = {
        if let env = ProcessInfo.processInfo.environment["AERIALSEG_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()

    /// A file under `../shared/`, or nil (with a printed skip notice) when the shared folder is absent.
    public static func shared(_ relative: String, for test: String = #function) -> URL? {
        guard let root = sharedRoot else {
            print("skipped: \(test): ../shared is not present (needs \(relative))")
            return nil
        }
        let url = root.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            print("skipped: \(test): \(url.path) is missing")
            return nil
        }
        return url
    }

    /// Whether `../shared/<relative>` exists: the condition of a test's `.enabled(if:)` trait, so a
    /// test over shared material is reported as skipped when it is absent (never a silent pass).
    public static func hasShared(_ relative: String) -> Bool {
        guard let root = sharedRoot else { return false }
        return FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path)
    }

    /// `../shared/<relative>`, for tests gated by `.enabled(if: Fixtures.hasShared(...))`; throws if
    /// it is missing after all (a test that runs must check something).
    public static func requireShared(_ relative: String) throws -> URL {
        guard let root = sharedRoot, FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path)
        else { throw ToolError(message: "../shared/\(relative) is missing") }
        return root.appendingPathComponent(relative)
    }

    /// A fresh temporary directory, removed by the caller (or left in /tmp).
    public static func temporaryDirectory(_ label: String = "aerialseg-test") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
