internal import CNghttp2

#if canImport(Glibc)
    import Glibc
#endif

// nghttp2 keeps a 16 KiB frame buffer per session for its whole life, though sending
// our frames only ever touches its first page (DATA payloads bypass it: they are sent
// with NGHTTP2_DATA_FLAG_NO_COPY). From malloc that buffer is usually recycled, fully
// resident memory; from mmap, untouched pages cost nothing. For a relay holding many
// idle tunnels that is most of a session's footprint, so allocations this large are
// mapped, and everything else goes to malloc as usual.
//
// Each block starts with a 16-byte header (requested size, mapped length or 0), so
// free and realloc know where a block came from.

private let headerSize = 16
private let mapThreshold = 16 * 1024

private func allocate(_ size: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
    let total = size + headerSize
    let base: UnsafeMutableRawPointer
    var mapped = 0
    if size >= mapThreshold {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        mapped = (total + page - 1) / page * page
        guard let region = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            region != MAP_FAILED
        else { return nil }
        base = region  // anonymous mappings start zeroed
    } else {
        guard let block = zeroed ? calloc(1, total) : malloc(total) else { return nil }
        base = block
    }
    base.storeBytes(of: UInt64(size), as: UInt64.self)
    base.storeBytes(of: UInt64(mapped), toByteOffset: 8, as: UInt64.self)
    return base + headerSize
}

private func release(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    let base = pointer - headerSize
    let mapped = Int(base.load(fromByteOffset: 8, as: UInt64.self))
    if mapped > 0 {
        munmap(base, mapped)
    } else {
        free(base)
    }
}

private func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let pointer else { return allocate(size, zeroed: false) }
    let base = pointer - headerSize
    let oldSize = Int(base.load(as: UInt64.self))
    let mapped = base.load(fromByteOffset: 8, as: UInt64.self)
    if mapped == 0, size < mapThreshold {
        guard let block = realloc(base, size + headerSize) else { return nil }
        block.storeBytes(of: UInt64(size), as: UInt64.self)
        return block + headerSize
    }
    guard let fresh = allocate(size, zeroed: false) else { return nil }
    fresh.copyMemory(from: pointer, byteCount: min(oldSize, size))
    release(pointer)
    return fresh
}

/// The allocator for a new session. nghttp2 copies the struct, and it holds no state.
func makeSessionMemory() -> nghttp2_mem {
    nghttp2_mem(
        mem_user_data: nil,
        malloc: { size, _ in allocate(size, zeroed: false) },
        free: { pointer, _ in release(pointer) },
        calloc: { count, size, _ in allocate(count * size, zeroed: true) },
        realloc: { pointer, size, _ in reallocate(pointer, size) })
}
