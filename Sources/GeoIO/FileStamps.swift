import CGDAL
import Foundation

/// A file as a resume key sees it: path, byte size and modification time (whole seconds), through
/// GDAL's virtual file system, so `/vsizip/`, `/vsicurl/` and friends are stamped too.
public struct FileStamp: Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let size: Int64
    public let modified: Int64

    public var description: String { "\(path):\(size):\(modified)" }

    /// A local file by `stat(2)`; a file of GDAL's virtual file systems (`/vsizip/…`) by its size
    /// alone (opened with `VSIFOpenL`, modification time 0); nil when neither can read it.
    /// (`VSIStatL` would do both, but its `struct stat64` is not visible to Swift.)
    init?(path: String) {
        self.path = path
        var status = stat()
        if stat(path, &status) == 0 {
            size = Int64(status.st_size)
            modified = Int64(status.st_mtim.tv_sec)
            return
        }
        guard let file = VSIFOpenL(path, "rb") else { return nil }
        defer { VSIFCloseL(file) }
        guard VSIFSeekL(file, 0, SEEK_END) == 0 else { return nil }
        size = Int64(VSIFTellL(file))
        modified = 0
    }
}

extension Dataset {
    /// Every file GDAL reads for this dataset (the file itself, its sidecars, a VRT's sources), each
    /// stamped with its size and modification time, in GDAL's order; a file that cannot be read is
    /// left out. Empty for a dataset without files (a subdataset string, an in-memory dataset).
    /// A changed source of a mosaic changes the stamps, so a resumed job does not mix old and new
    /// pixels. The corresponding C function is `GDALGetFileList`.
    public var fileStamps: [FileStamp] {
        let list = GDALGetFileList(handle)
        defer { CSLDestroy(list) }
        var stamps: [FileStamp] = []
        var index = 0
        while let item = list?[index] {
            index += 1
            if let stamp = FileStamp(path: String(cString: item)) { stamps.append(stamp) }
        }
        return stamps
    }
}
