import CKernels
import Foundation

/// How the process's allocator gives memory back.
///
/// glibc serves a block of 128 KiB or more with its own mmap and returns it when freed, but each
/// time such a block is freed it raises that threshold to the block's size (up to 32 MiB). After
/// model loading has freed its temporary weight arrays, blocks of up to several MiB come from the
/// heap instead, and the heap keeps what is freed. Fixing the threshold at glibc's default keeps
/// large blocks on their own pages, returned when freed: 512² `bench` peak RSS DeepLabV3+ R-18-D8
/// 469 → 421 MiB, FCN R-50-D8 1004 → 905, FastFCN 987 → 913, at the same speed (activations come
/// from the arenas, so the forward pass makes few such allocations).
public enum ProcessMemory {
    /// Fixes glibc's mmap threshold at 128 KiB, unless `MALLOC_MMAP_THRESHOLD_` already sets it.
    /// The CLI calls this first; a library user may call it too. Returns whether it was set.
    @discardableResult
    public static func returnLargeBlocksWhenFreed() -> Bool {
        guard ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return false }
        return aerialseg_fix_mmap_threshold(128 * 1024) == 1
    }
}
