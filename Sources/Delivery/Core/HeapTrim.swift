internal import CFileIO

/// The process heap's footprint: glibc's malloc keeps freed memory for reuse (per arena, one arena per thread
/// that contended, up to 8 per core), so after a burst the agent's own memory (RssAnon) stayed at its peak although
/// the live heap was back to a few MB (bench/pickup.py, heaptrack).
public enum HeapTrim {
    /// Caps the number of malloc arenas (`mallopt(M_ARENA_MAX)`): a daemon whose threads mostly wait gains nothing
    /// from one arena per thread but each arena's free memory. Call once, early.
    public static func limitArenas(to count: Int) {
        _ = cfileio_malloc_arena_max(Int32(count))
    }

    /// Serves allocations of `bytes` and more with their own mappings, returned to the kernel when freed
    /// (`mallopt(M_MMAP_THRESHOLD)`; a fixed threshold also stops glibc from raising it, and the trim threshold
    /// with it, after the first large free: large transient buffers — a dashboard page, a listing of the spool —
    /// then stayed in the heap as free memory). Call once, early.
    public static func mapAllocations(atLeast bytes: Int) {
        _ = cfileio_malloc_mmap_threshold(Int32(bytes))
    }

    /// Returns the free pages of every arena to the kernel (`malloc_trim(0)`); a few milliseconds on a small heap.
    /// Returns whether anything was released.
    @discardableResult
    public static func releaseFreeMemory() -> Bool {
        cfileio_malloc_trim() == 1
    }
}
