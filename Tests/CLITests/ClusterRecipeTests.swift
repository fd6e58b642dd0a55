import Foundation
import Pipeline
import Testing
import TestSupport
import Yams

/// Examples/slurm and Examples/kubernetes: the Kubernetes manifests pass `kubernetes-validate
/// --strict` and give each pod the shard the Slurm array gives its task; the Slurm array runs on a
/// real one-node Slurm and gives the bytes of a one-process run.
@Suite(.serialized) struct ClusterRecipeTests {
    static let examples = Fixtures.packageRoot.appendingPathComponent("Examples")

    /// Every document of a manifest file.
    func documents(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: Self.examples.appendingPathComponent("kubernetes/\(name)"), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    /// The Jobs of the manifests, with what a test checks of them.
    struct IndexedJob {
        let file: String
        let completions: Int
        let parallelism: Int
        let shardCount: Int?
        let command: [String]
        let cpuLimit: String?
        let threads: String?
    }

    func jobs() throws -> [IndexedJob] {
        var found: [IndexedJob] = []
        for file in ["aerialseg-indexed-job.yaml", "aerialseg-batch-job.yaml"] {
            for doc in try documents(file) where doc["kind"] as? String == "Job" {
                let spec = try #require(doc["spec"] as? [String: Any])
                // Schema validation does not check enum values: a typo such as `Indexd` passes it.
                #expect(spec["completionMode"] as? String == "Indexed", "\(file)")
                let template = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
                #expect(template["restartPolicy"] as? String == "Never", "\(file): backoffLimitPerIndex needs Never")
                let container = try #require((template["containers"] as? [[String: Any]])?.first)
                let env = (container["env"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) {
                    $0[$1["name"] as! String] = $1["value"] as? String
                }
                let command = (container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
                let words = command.flatMap { $0.split(whereSeparator: \.isWhitespace).map(String.init) }
                let threads = words.firstIndex(of: "--threads").map { words[$0 + 1] }
                let limits = (container["resources"] as? [String: Any])?["limits"] as? [String: Any]
                found.append(IndexedJob(file: file, completions: spec["completions"] as! Int,
                                        parallelism: spec["parallelism"] as! Int,
                                        shardCount: env["AERIALSEG_SHARD_COUNT"].flatMap { Int($0) },
                                        command: words, cpuLimit: limits?["cpu"] as? String, threads: threads))
            }
        }
        return found
    }

    @Test func kubernetesJobsGiveEachPodTheShardSlurmGivesItsTask() throws {
        let jobs = try jobs()
        #expect(jobs.count == 2)
        let sbatch = try String(contentsOf: Self.examples.appendingPathComponent("slurm/aerialseg-array.sbatch"),
                                encoding: .utf8)
        #expect(sbatch.contains("--shard auto"))
        for job in jobs {
            #expect(job.shardCount == job.completions, "\(job.file): AERIALSEG_SHARD_COUNT must equal completions")
            #expect(job.parallelism <= job.completions, "\(job.file)")
            #expect(job.command.contains("--shard") && job.command[job.command.firstIndex(of: "--shard")! + 1] == "auto",
                    "\(job.file)")
            #expect(job.threads != nil && job.threads == job.cpuLimit, "\(job.file): --threads should match the CPU limit")
            let count = try #require(job.shardCount)
            var seen = Set<Int>()
            for index in 0..<job.completions {
                let pod = try Shard(parsing: "auto", environment: ["JOB_COMPLETION_INDEX": "\(index)",
                                                                   "AERIALSEG_SHARD_COUNT": "\(count)"])
                // What `sbatch --array=0-(N-1)` sets for task `index`.
                let task = try Shard(parsing: "auto", environment: [
                    "SLURM_ARRAY_TASK_ID": "\(index)", "SLURM_ARRAY_TASK_COUNT": "\(job.completions)",
                    "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "\(job.completions - 1)",
                ])
                #expect(pod == task, "\(job.file): pod \(index) runs shard \(pod), the Slurm task \(task)")
                seen.insert(pod.index)
            }
            #expect(seen == Set(0..<job.completions), "\(job.file): every shard runs once")
        }
    }

    /// `kubernetes-validate --strict` (offline schemas) against the oldest Kubernetes with
    /// `backoffLimitPerIndex` in beta (1.29) and its newest schemas. Installs it from PyPI into
    /// `.build/` on first use.
    @Test(.enabled(if: ClusterTools.python != nil, "needs python3 with venv"))
    func kubernetesManifestsValidateStrictly() throws {
        let validate = try ClusterTools.kubernetesValidate()
        let manifests = ["aerialseg-indexed-job.yaml", "aerialseg-batch-job.yaml", "aerialseg-output-pvc.yaml"]
            .map { Self.examples.appendingPathComponent("kubernetes/\($0)").path }
        for version in ["1.29.0", "1.37.0"] {
            let result = try Tool.run(validate, ["--strict", "-k", version] + manifests)
            #expect(result.status == 0, "\(version): \(result.stdout)\(result.stderr)")
        }
        // The validator is not a rubber stamp: an unknown field fails it.
        let dir = Fixtures.temporaryDirectory("aerialseg-k8s")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.yaml")
        try String(contentsOfFile: manifests[0], encoding: .utf8)
            .replacingOccurrences(of: "parallelism:", with: "paralelism:").write(to: bad, atomically: true, encoding: .utf8)
        #expect(try Tool.run(validate, ["--strict", bad.path]).status != 0)
    }

    /// An array of 4 tasks and the dependent merge job on a real Slurm, against a one-process run.
    @Test(.enabled(if: SlurmCluster.shared.isUp, "Slurm could not be started here (see the test log)"))
    func slurmArrayOfFourGivesTheBytesOfOneProcess() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-slurm")
        defer { try? FileManager.default.removeItem(at: dir) }
        // slurmd runs the tasks as this user; the folder must be reachable by them like a shared filesystem.
        chmod(dir.path, 0o777)
        let inputs = try ClusterTools.mosaicAndSecondInput(in: dir)
        let pipeline = try ClusterTools.smallPipeline(in: dir)
        let common = ["--block-size", "1024"]
        let single = dir.appendingPathComponent("single").path
        let one = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input"] + inputs + ["--output", single, "--quiet"]
                               + common)
        try #require(one.status == 0, "\(one.stderr)")

        let sharded = dir.appendingPathComponent("sharded").path
        let script = Self.examples.appendingPathComponent("slurm/aerialseg-array.sbatch").path
        let merge = Self.examples.appendingPathComponent("slurm/aerialseg-merge.sbatch").path
        // The recipe's scripts as users run them; small blocks (many per shard) come from a wrapper
        // named by AERIALSEG, the variable the scripts read.
        let wrapper = dir.appendingPathComponent("aerialseg").path
        try "#!/bin/sh\nexec \(Tool.aerialseg) \"$@\" \(common.joined(separator: " "))\n"
            .write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let env = SlurmCluster.shared.environment.merging(["AERIALSEG": wrapper]) { $1 }
        let submit = try Tool.run("/usr/bin/sbatch", ["--parsable", "--array=0-3", "--cpus-per-task=1",
                                                      "--chdir", dir.path, script, pipeline, sharded] + inputs,
                                  environment: env)
        try #require(submit.status == 0, "\(submit.stderr)")
        let array = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let merged = try Tool.run("/usr/bin/sbatch", ["--parsable", "--dependency=afterok:\(array)", "--cpus-per-task=1",
                                                      "--chdir", dir.path, merge, pipeline, sharded] + inputs,
                                  environment: env)
        try #require(merged.status == 0, "\(merged.stderr)")
        let mergeJob = merged.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try SlurmCluster.shared.wait(jobs: [array, mergeJob], timeoutSeconds: 900)
        for job in [array, mergeJob] {
            let states = try SlurmCluster.shared.states(of: job)
            #expect(!states.isEmpty && states.allSatisfy { $0 == "COMPLETED" }, "job \(job): \(states)")
        }
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.filter { $0.hasSuffix(".out") } ?? []
        #expect(logs.count == 5, "one log per task and one of the merge: \(logs)")
        try ClusterTools.expectIdenticalOutputs(single, sharded)
    }
}
