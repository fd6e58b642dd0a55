import Foundation
import GeoIO
import Pipeline
import TestSupport

/// What the pipeline tests add to `OracleFixture`: pipelines of any fixture model, GeoTIFF cases.
extension OracleFixture {
    /// A pipeline file whose model is the fixture's (JSON is YAML), with the given tiling.
    func writePipeline(to path: String, crop: Int, stride: Int) throws {
        let model = self.model(keys: ["backbone", "neck", "decode_head", "data_preprocessor", "num_classes",
                                      "align_corners", "model"])
        let modelJSON = String(decoding: try JSONSerialization.data(withJSONObject: model), as: UTF8.self)
        let yaml = "model: \(modelJSON)\ntiling: {crop: \(crop), stride: \(stride), blend: mean}\n"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The case's BGR image written as an RGB GeoTIFF (EPSG:32618, 10 m pixels).
    func writeGeoTIFF(_ caseName: String, to path: String) throws -> (width: Int, height: Int) {
        let dims = shape(caseName, "image_bgr_u8")!
        let (h, w) = (dims[0], dims[1])
        let bgr = try bytes(caseName, "image_bgr_u8")
        var planes = [UInt8](repeating: 0, count: 3 * h * w)
        for i in 0..<(h * w) { for c in 0..<3 { planes[c * h * w + i] = bgr[i * 3 + (2 - c)] } }
        var spec = RasterSpec(width: w, height: h, bandCount: 3)
        spec.geoTransform = GeoTransform([500_000, 10, 0, 4_000_000, 0, -10])
        spec.crsWKT = try SpatialReference(epsg: 32618).wkt
        let writer = try RasterWriter(path: path, spec: spec)
        try planes.withUnsafeBufferPointer { try writer.write(PixelWindow(x: 0, y: 0, width: w, height: h), bytes: $0) }
        try writer.close()
        return (w, h)
    }
}

/// Softmax over C of (C, N) logits: (argmax, max probability, top-2 logit margin) per pixel.
func softmaxStats(_ logits: [Float], classes: Int) -> [(label: Int, probability: Float, margin: Float)] {
    let n = logits.count / classes
    return (0..<n).map { p in
        var best = 0
        for c in 1..<classes where logits[c * n + p] > logits[best * n + p] { best = c }
        let top = logits[best * n + p]
        var second = -Float.infinity
        for c in 0..<classes where c != best { second = max(second, logits[c * n + p]) }
        var sum: Float = 0
        for c in 0..<classes { sum += expf(logits[c * n + p] - top) }
        return (best, 1 / sum, top - second)
    }
}

/// Reads a whole single-band raster as Float32.
func readAll(_ path: String) throws -> [Float] {
    let ds = try Dataset(path: path)
    var values = [Float](repeating: 0, count: ds.width * ds.height)
    try values.withUnsafeMutableBufferPointer {
        try ds.read(PixelWindow(x: 0, y: 0, width: ds.width, height: ds.height), bands: [1], into: $0)
    }
    return values
}

#if canImport(Glibc)
import Glibc
#endif
