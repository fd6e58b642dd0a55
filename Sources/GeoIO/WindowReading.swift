import CGDAL

extension Dataset {
    /// Reads `window` of `bands` into `buffer` as Float32, band-sequential:
    /// buffer is (bands.count, window.height, window.width), converted from the native type.
    ///
    /// Windows may run past the raster edge: the outside part is filled with `fill` and marked
    /// invalid. `validity`, if given, is (window.height, window.width), 1 = valid pixel, 0 = nodata /
    /// transparent / masked / outside / NaN / ±Inf. Validity follows the file's own mask: an alpha band or
    /// per-dataset mask when present; else nodata, where a pixel is invalid only when *every* band
    /// read holds its nodata value (rasterio's `dataset_mask` rule, so a real black pixel in one
    /// channel is not lost); else all inside pixels are valid. Bands are 1-based.
    /// The corresponding C function is `GDALDatasetRasterIO`.
    public func read(
        _ window: PixelWindow, bands: [Int], into buffer: UnsafeMutableBufferPointer<Float>,
        validity: UnsafeMutableBufferPointer<UInt8>? = nil, fill: Float = 0
    ) throws {
        let planeCount = window.width * window.height
        guard window.width > 0, window.height > 0 else {
            throw GeoIOError(.invalidArgument, path: path, message: "empty \(window)", hint: "width and height must be positive")
        }
        guard !bands.isEmpty, bands.allSatisfy({ $0 >= 1 && $0 <= bandCount }) else {
            throw GeoIOError(.invalidArgument, path: path, message: "bands \(bands) not in 1...\(bandCount)",
                             hint: "the raster has \(bandCount) band(s)")
        }
        precondition(buffer.count >= planeCount * bands.count, "buffer too small for \(window) × \(bands.count) bands")
        if let validity { precondition(validity.count >= planeCount, "validity buffer too small") }

        guard let inside = window.clipped(toWidth: width, height: height) else {
            for i in 0..<(planeCount * bands.count) { buffer[i] = fill }
            if let validity { for i in 0..<planeCount { validity[i] = 0 } }
            return
        }
        let partial = inside != window
        if partial {
            for i in 0..<(planeCount * bands.count) { buffer[i] = fill }
        }
        let offset = (inside.y - window.y) * window.width + (inside.x - window.x)
        var bandMap = bands.map { Int32($0) }
        let err = withQuietGDAL {
            GDALDatasetRasterIOEx(
                handle, GF_Read, Int32(inside.x), Int32(inside.y), Int32(inside.width), Int32(inside.height),
                buffer.baseAddress! + offset, Int32(inside.width), Int32(inside.height), GDT_Float32,
                Int32(bands.count), &bandMap, 4, Int64(window.width * 4), Int64(planeCount * 4), nil)
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read \(inside)",
                            hint: "the file may be truncated or corrupt; `gdalinfo -checksum` shows it")
        }
        CPLErrorReset()
        guard let validity else { return }
        let target = BufferArea(offset: offset, width: inside.width, height: inside.height, rowStride: window.width,
                                planeCount: planeCount)
        try computeValidity(source: inside, target: target, bands: bands, buffer: buffer, validity: validity,
                            fill: fill)
    }

    /// Reads all of `bands` decimated to `outWidth` × `outHeight` pixels (nearest neighbour, from
    /// overviews when the file has them), band-sequential Float32, with validity as `read` decides
    /// it. A bounded-memory sample of a whole raster, e.g. for statistics.
    /// The corresponding C function is `GDALDatasetRasterIOEx` with a smaller buffer than the source.
    public func readDecimated(bands: [Int], width outWidth: Int, height outHeight: Int,
                              into buffer: UnsafeMutableBufferPointer<Float>,
                              validity: UnsafeMutableBufferPointer<UInt8>) throws {
        let planeCount = outWidth * outHeight
        guard outWidth > 0, outHeight > 0, outWidth <= width, outHeight <= height else {
            throw GeoIOError(.invalidArgument, path: path, message: "decimated size \(outWidth)×\(outHeight)",
                             hint: "must be positive and at most the raster's \(width)×\(height)")
        }
        guard !bands.isEmpty, bands.allSatisfy({ $0 >= 1 && $0 <= bandCount }) else {
            throw GeoIOError(.invalidArgument, path: path, message: "bands \(bands) not in 1...\(bandCount)",
                             hint: "the raster has \(bandCount) band(s)")
        }
        precondition(buffer.count >= planeCount * bands.count && validity.count >= planeCount, "buffers too small")
        var bandMap = bands.map { Int32($0) }
        let err = withQuietGDAL {
            GDALDatasetRasterIOEx(handle, GF_Read, 0, 0, Int32(width), Int32(height), buffer.baseAddress!,
                                  Int32(outWidth), Int32(outHeight), GDT_Float32, Int32(bands.count), &bandMap, 4,
                                  Int64(outWidth * 4), Int64(planeCount * 4), nil)
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read a decimated copy",
                            hint: "the file may be truncated or corrupt; `gdalinfo -checksum` shows it")
        }
        CPLErrorReset()
        let target = BufferArea(offset: 0, width: outWidth, height: outHeight, rowStride: outWidth,
                                planeCount: planeCount)
        try computeValidity(source: PixelWindow(x: 0, y: 0, width: width, height: height), target: target,
                            bands: bands, buffer: buffer, validity: validity, fill: 0)
    }

    /// Where in a band-sequential buffer a raster area landed: `width` × `height` pixels from
    /// `offset`, rows `rowStride` apart, bands `planeCount` apart.
    private struct BufferArea {
        let offset: Int, width: Int, height: Int, rowStride: Int, planeCount: Int
    }

    /// Validity of the pixels `source` was read into (`target`); non-finite values become `fill`.
    private func computeValidity(
        source inside: PixelWindow, target: BufferArea, bands: [Int], buffer: UnsafeMutableBufferPointer<Float>,
        validity: UnsafeMutableBufferPointer<UInt8>, fill: Float
    ) throws {
        let planeCount = target.planeCount
        for i in 0..<planeCount { validity[i] = 0 }
        let first = band(bands[0])
        let flags = first.maskFlags
        let offset = target.offset
        if flags.contains(.perDataset) {
            // Alpha band or internal/external mask: GDAL's mask band, read as bytes, nonzero = valid.
            let mask = GDALGetMaskBand(first.handle)
            let err = withQuietGDAL {
                GDALRasterIOEx(mask, GF_Read, Int32(inside.x), Int32(inside.y), Int32(inside.width), Int32(inside.height),
                             validity.baseAddress! + offset, Int32(target.width), Int32(target.height), GDT_Byte,
                             1, Int64(target.rowStride), nil)
            }
            guard err == CE_None else {
                throw gdalError(.readFailed, path: path, fallback: "cannot read the mask of \(inside)",
                                hint: "the file's mask or alpha band may be corrupt")
            }
            for row in 0..<target.height {
                let start = offset + row * target.rowStride
                for i in start..<(start + target.width) { validity[i] = validity[i] != 0 ? 1 : 0 }
            }
        } else {
            let noData: [Float?] = bands.map { band($0).noDataValue.map { Float($0) } }
            let anyNoData = noData.contains { $0 != nil }
            for row in 0..<target.height {
                let start = offset + row * target.rowStride
                for i in start..<(start + target.width) {
                    var valid = !anyNoData
                    for (b, nd) in noData.enumerated() {
                        let v = buffer[b * planeCount + i]
                        if let nd {
                            if !(v == nd || (v.isNaN && nd.isNaN)) { valid = true }
                        } else {
                            valid = true
                        }
                    }
                    validity[i] = valid ? 1 : 0
                }
            }
        }
        // NaN and ±Inf never reach a model: such pixels become `fill` and are invalid.
        for b in 0..<bands.count {
            for i in 0..<planeCount where !buffer[b * planeCount + i].isFinite {
                buffer[b * planeCount + i] = fill
                validity[i] = 0
            }
        }
    }

    /// Reads the whole of one band decimated to `width` × `height` pixels (nearest neighbour, from
    /// overviews when the file has them), e.g. for a quick-look.
    public func readBytes(band index: Int = 1, decimatedTo outWidth: Int, _ outHeight: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outWidth * outHeight)
        guard index >= 1 && index <= bandCount else {
            throw GeoIOError(.invalidArgument, path: path, message: "band \(index) not in 1...\(bandCount)", hint: "")
        }
        let err = out.withUnsafeMutableBufferPointer { buf in
            withQuietGDAL {
                GDALRasterIOEx(band(index).handle, GF_Read, 0, 0, Int32(width), Int32(height), buf.baseAddress!,
                               Int32(outWidth), Int32(outHeight), GDT_Byte, 1, Int64(outWidth), nil)
            }
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read a decimated copy", hint: "")
        }
        return out
    }

    /// Reads the whole of one band decimated to `width` × `height` pixels as Float32 (nearest
    /// neighbour, from overviews when the file has them), e.g. a quick-look of 16-bit imagery.
    public func readFloats(band index: Int = 1, decimatedTo outWidth: Int, _ outHeight: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: outWidth * outHeight)
        guard index >= 1 && index <= bandCount else {
            throw GeoIOError(.invalidArgument, path: path, message: "band \(index) not in 1...\(bandCount)", hint: "")
        }
        let err = out.withUnsafeMutableBufferPointer { buf in
            withQuietGDAL {
                GDALRasterIOEx(band(index).handle, GF_Read, 0, 0, Int32(width), Int32(height), buf.baseAddress!,
                               Int32(outWidth), Int32(outHeight), GDT_Float32, 4, Int64(outWidth) * 4, nil)
            }
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read a decimated copy", hint: "")
        }
        return out
    }

    /// Reads `window` of one band as bytes (values clamped to 0...255 by GDAL), e.g. a label raster.
    /// Outside the raster, pixels are `fill`.
    public func readBytes(_ window: PixelWindow, band index: Int = 1, fill: UInt8 = 0) throws -> [UInt8] {
        var out = [UInt8](repeating: fill, count: window.width * window.height)
        guard index >= 1 && index <= bandCount else {
            throw GeoIOError(.invalidArgument, path: path, message: "band \(index) not in 1...\(bandCount)", hint: "")
        }
        guard let inside = window.clipped(toWidth: width, height: height) else { return out }
        let offset = (inside.y - window.y) * window.width + (inside.x - window.x)
        let err = out.withUnsafeMutableBufferPointer { buf in
            withQuietGDAL {
                GDALRasterIOEx(band(index).handle, GF_Read, Int32(inside.x), Int32(inside.y),
                             Int32(inside.width), Int32(inside.height), buf.baseAddress! + offset,
                             Int32(inside.width), Int32(inside.height), GDT_Byte, 1, Int64(window.width), nil)
            }
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read \(inside)",
                            hint: "the file may be truncated or corrupt")
        }
        return out
    }
}
