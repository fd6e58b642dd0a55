import Foundation

/// Where test data lives.
///
/// `Tests/Fixtures/` travels with the project; `../shared/` (rasters, mmseg oracle fixtures) is
/// beside the clone for developers and CI but not for users who clone only the project. Tests
/// over shared material call `Fixtures.shared(...)` and skip, saying so, when it returns nil.
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

    /// A fresh temporary directory, removed by the caller (or left in /tmp).
    public static func temporaryDirectory(_ label: String = "aerialseg-test") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
