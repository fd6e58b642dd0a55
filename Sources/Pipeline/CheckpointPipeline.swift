import Foundation
import SegCore

extension PipelineConfig {
    /// The pipeline an mmengine runner checkpoint describes: model, data_preprocessor and test_cfg
    /// from its config text (`meta.cfg`, mmengine's `pretty_text`, parsed by the strict config
    /// reader, never executed), classes and palette from `meta.dataset_meta`. Its `checkpoint` is `path`.
    public static func fromCheckpoint(_ checkpoint: Checkpoint, path: String) throws -> PipelineConfig {
        guard let text = checkpoint.meta.configText else {
            throw PipelineError(path: path, reason: "carries no training config (meta.cfg)",
                                hint: "give a pipeline file, or make one with aerialseg import-config CONFIG.py")
        }
        var config = try importing(configText: text, source: "\(path) (meta.cfg)")
        config.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if let classes = checkpoint.meta.classes {
            config.classes = classes
            config.palette = checkpoint.meta.palette ?? (config.palette?.count == classes.count ? config.palette : nil)
        }
        config.checkpoint = path
        config.sourcePath = nil
        try config.validate(path: path)
        return config
    }

}
