import Foundation
import SegCore
import TestSupport
import Testing

/// `--precision bf16` against mmseg's float32 logits on every shared seed fixture.
///
/// Tolerance: bf16 keeps 8 significant bits, a unit roundoff of u = 2⁻⁹ ≈ 0.2 %. A bf16 convolution
/// rounds its input and its weights once each and accumulates in f32, so its output carries a
/// relative error of about 2u per layer, with random signs: over L direct convolutions in a chain
/// the errors add in quadrature, ≈ 2u·√L relative to the logits' scale. The deepest seed chain
/// (ResNet-101, about 100 convolutions) gives 2 · 2⁻⁹ · 10 ≈ 3.9 %, so the test allows 4 % of the
/// largest oracle logit (measured: 0.2–1.0 %, the most for DeepLabV3+ R-18) and asserts that bf16
/// did change the result (by more than f32's 1e-4 parity), so a silent fall-back to f32 cannot
/// pass. Labels are not compared: these fixtures have random weights, whose logits are near ties
/// everywhere (trained weights: `PrecisionTests`).
@Suite("bf16 against mmseg's logits")
struct PrecisionParityTests {
    static let relativeTolerance: Float = 0.04

    @Test("bf16 logits stay within the bf16 tolerance of mmseg's",
          .enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg"),
          .enabled(if: FastBackend.cpuHasBF16, "this CPU has no AVX512-BF16 or AMX: bf16 runs as f32"),
          arguments: ModelParityTests.fixtureCases)
    func bf16LogitsAgree(_ fixture: FixtureCase) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/\(fixture.model)")
        let oracle = try Oracle(folder)
        let weights = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path).floatTensors()
        let input = try oracle.tensor(try #require(oracle.array(fixture.caseName, "input"), "no input array"))
        let theirs = try oracle.tensor(try #require(oracle.array(fixture.caseName, oracle.config.isRegSeg ? "logits" : "logits_whole"),
                                                    "no whole-image logits"))
        let bf16 = try SegmentationModel(config: oracle.config, weights: weights,
                                         backend: try FastBackend(threads: 2, precision: .bf16))
        let f32 = try SegmentationModel(config: oracle.config, weights: weights, backend: try FastBackend(threads: 2))
        #expect(bf16.precision == .bf16)
        let ours = try bf16.logits(input)
        let scale = theirs.data.reduce(0) { max($0, abs($1)) }
        let diff = maxAbsDiff(ours, theirs)
        let fromF32 = maxAbsDiff(ours, try f32.logits(input))
        print("bf16 \(fixture.model) \(fixture.caseName): max |Δ| \(String(format: "%.2e", diff)) of max |logit| "
              + "\(String(format: "%.2f", scale)) (\(String(format: "%.2f", 100 * diff / scale)) %), from f32 \(String(format: "%.2e", fromF32))")
        #expect(ours.shape == theirs.shape)
        #expect(diff <= Self.relativeTolerance * scale, "max |Δ| \(diff), max |logit| \(scale)")
        #expect(fromF32 > 1e-4, "bf16 gave f32's logits (max |Δ| \(fromF32)): no convolution ran in bf16")
    }
}
