import Foundation

/// A one-node Slurm cluster started once per test process by `.ci/slurm-single-node.sh up` (Debian's
/// slurmctld, slurmd and munge). `isUp` is false, with the reason printed, only when it cannot start.
public final class SlurmCluster: Sendable {
    public static let shared = SlurmCluster()

    /// `SLURM_CONF=...` for sbatch, squeue and scontrol; nil when the cluster is not up.
    public let environment: [String: String]
    public var isUp: Bool { !environment.isEmpty }

    private init() {
        let script = Fixtures.packageRoot.appendingPathComponent(".ci/slurm-single-node.sh").path
        guard let result = try? Tool.run("/bin/bash", [script, "up"]) else {
            print("skipped: Slurm: cannot run \(script)")
            environment = [:]
            return
        }
        let conf = result.stdout.split(separator: "\n").last { $0.hasPrefix("SLURM_CONF=") }
        guard result.status == 0, let conf else {
            print("skipped: Slurm did not start: \(result.stderr.suffix(2000))")
            environment = [:]
            return
        }
        environment = ["SLURM_CONF": String(conf.dropFirst("SLURM_CONF=".count))]
    }

    /// Waits until none of `jobs` is pending or running (`squeue` lists none of them).
    public func wait(jobs: [String], timeoutSeconds: Double) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            let queue = try Tool.run("/usr/bin/squeue", ["-h", "-j", jobs.joined(separator: ",")],
                                     environment: environment)
            if queue.status == 0 && queue.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw ToolError(message: "Slurm jobs \(jobs) still queued or running after \(Int(timeoutSeconds)) s")
    }

    /// The `JobState` of each task of `job` (an array lists one per task), from `scontrol show job`.
    public func states(of job: String) throws -> [String] {
        let shown = try Tool.run("/usr/bin/scontrol", ["show", "job", job], environment: environment)
        return shown.stdout.components(separatedBy: "JobState=").dropFirst().map {
            String($0.prefix { !$0.isWhitespace })
        }
    }
}

/// What the cluster-recipe tests share: inputs, a small pipeline, the validator, byte comparison.
public enum ClusterTools {
    /// `python3` with a working `venv` module, or nil.
    public static let python: String? = {
        guard let result = try? Tool.run("python3", ["-c", "import venv, ensurepip"]), result.status == 0 else { return nil }
        return "python3"
    }()

    /// `kubernetes-validate` 1.37.0 (offline schemas) in `.build/kubernetes-validate/`, installed from
    /// PyPI the first time.
    public static func kubernetesValidate() throws -> String {
        let venv = Fixtures.packageRoot.appendingPathComponent(".build/kubernetes-validate")
        let tool = venv.appendingPathComponent("bin/kubernetes-validate").path
        if FileManager.default.isExecutableFile(atPath: tool) { return tool }
        let made = try Tool.run("python3", ["-m", "venv", venv.path])
        guard made.status == 0 else { throw ToolError(message: "python3 -m venv: \(made.stderr)") }
        let pip = try Tool.run(venv.appendingPathComponent("bin/pip").path,
                               ["install", "-q", "--disable-pip-version-check", "kubernetes-validate==1.37.0"])
        guard pip.status == 0 else { throw ToolError(message: "pip install kubernetes-validate: \(pip.stderr)") }
        return tool
    }

    /// A 4096² VRT mosaic of four shifted copies of `Tests/Fixtures/rasters/ortho_10cm.tif` (2048²),
    /// and `rgb1.tif` as a second input of another size.
    public static func mosaicAndSecondInput(in dir: URL) throws -> [String] {
        let ortho = Fixtures.local("rasters/ortho_10cm.tif").path
        let gt = try Tool.gdalinfoJSON(ortho)["geoTransform"] as! [Double]
        let side = 2048.0
        var copies: [String] = []
        for (i, (dx, dy)) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)].enumerated() {
            let ulx = gt[0] + dx * side * gt[1], uly = gt[3] + dy * side * gt[5]
            let lrx = ulx + side * gt[1], lry = uly + side * gt[5]
            let copy = dir.appendingPathComponent("copy\(i).vrt").path
            let made = try Tool.run("gdal_translate", ["-q", "-of", "VRT", "-a_ullr", "\(ulx)", "\(uly)", "\(lrx)", "\(lry)",
                                                       ortho, copy])
            guard made.status == 0 else { throw ToolError(message: made.stderr) }
            copies.append(copy)
        }
        let mosaic = dir.appendingPathComponent("mosaic4096.vrt").path
        let built = try Tool.run("gdalbuildvrt", ["-q", mosaic] + copies)
        guard built.status == 0 else { throw ToolError(message: built.stderr) }
        return [mosaic, Fixtures.local("rasters/rgb1.tif").path]
    }

    /// A pipeline of the small fixture model (DeepLabV3+ R-18 at 1/16 widths, 6 Potsdam classes,
    /// `Tests/Fixtures/mmseg/dlv3p_r18_d8_potsdam`) with its checkpoint, and a `vectors:` block.
    public static func smallPipeline(in dir: URL, crop: Int = 256, stride: Int = 192) throws -> String {
        let fixture = try OracleFixture.small()
        return try fixture.writePipeline(in: dir, crop: crop, stride: stride, checkpoint: fixture.checkpoint,
                                         extra: ["vectors: {format: gpkg, exclude: [0]}"])
    }

    /// Both folders hold the same outputs (names and bytes), hidden work folders aside.
    public static func expectIdenticalOutputs(_ a: String, _ b: String) throws {
        func files(_ dir: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
        }
        let names = try files(a)
        guard !names.isEmpty else { throw ToolError(message: "\(a) holds no outputs") }
        guard names == (try files(b)) else { throw ToolError(message: "outputs differ: \(names) vs \(try files(b))") }
        for name in names {
            let x = try Data(contentsOf: URL(fileURLWithPath: a).appendingPathComponent(name))
            let y = try Data(contentsOf: URL(fileURLWithPath: b).appendingPathComponent(name))
            guard x == y else { throw ToolError(message: "\(name) differs between \(a) and \(b)") }
        }
    }
}
