import Foundation
import SegCore
import Testing
import TestSupport

/// Our cv2 INTER_LINEAR model against the images mmseg's 12-view TTA actually fed the network.
@Suite struct ImageResizeTests {
    static let ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]

    @Test(.enabled(if: Fixtures.hasShared("fixtures/mmseg/dlv3p_r18_d8_potsdam"), "needs ../shared/fixtures/mmseg/dlv3p_r18_d8_potsdam"), arguments: ["64x64", "96x80"])
    func ttaViewImagesAreBitExact(_ caseName: String) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/dlv3p_r18_d8_potsdam")
        let arrays = try OracleFixture(folder: folder).caseInfo(caseName)["arrays"] as! [String: Any]
        func load(_ name: String) throws -> (bytes: [UInt8], shape: [Int]) {
            let shape = (arrays[name] as! [String: Any])["shape"] as! [Int]
            return ([UInt8](try Data(contentsOf: folder.appendingPathComponent("\(caseName)/\(name).bin"))), shape)
        }
        let image = try load("image_bgr_u8")
        let (h, w) = (image.shape[0], image.shape[1])
        for (i, ratio) in Self.ratios.enumerated() {
            let expected = try load("tta_view\(2 * i)_image_bgr_u8")
            let size = ImageResize.mmcvRescaledSize(height: h, width: w, ratio: ratio)
            #expect([size.height, size.width] == Array(expected.shape.prefix(2)), "ratio \(ratio) size")
            let ours = ImageResize.cv2Linear(image.bytes, height: h, width: w, channels: 3,
                                             toHeight: size.height, toWidth: size.width)
            let differing = zip(ours, expected.bytes).filter { $0 != $1 }.count
            #expect(differing == 0 && ours.count == expected.bytes.count, "ratio \(ratio): \(differing) bytes differ")
        }
    }

    /// A hand-computed case: 2×1 → 4×1 (upscale), weights 1536/512 and the cv2 rounding.
    @Test func handComputedUpscale() {
        let out = ImageResize.cv2Linear([0, 100], height: 1, width: 2, channels: 1, toHeight: 1, toWidth: 4)
        // fx = (dx+0.5)/2 - 0.5 → -0.25 (clamped: 0), 0.25, 0.75, 1.25 (clamped to the last column)
        #expect(out == [0, 25, 75, 100])
    }
}
