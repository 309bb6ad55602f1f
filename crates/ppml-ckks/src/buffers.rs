//! A pool of limb buffers for temporaries (never secret data).

/// Recycled limb buffers for the temporaries of key switching and rescaling (never secret data):
/// reusing them avoids zero-filling fresh allocations and the allocator returning pages to the OS
/// and faulting them back in on every operation. One pool for all threads: buffers are often
/// taken on a rayon worker and returned on another thread.
static POOL: std::sync::Mutex<Pool> = std::sync::Mutex::new(Pool {
    bufs: Vec::new(),
    words: 0,
});

/// The spare buffers and their total capacity in words.
struct Pool {
    bufs: Vec<Vec<u64>>,
    words: usize,
}

/// At most this many bytes of spare buffers are kept.
const POOL_BYTES: usize = 64 << 20;

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool holds no invariant a panic could break: a poisoned lock is still usable.
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A buffer of `n` words with unspecified contents (to be overwritten).
pub(crate) fn take_buf(n: usize) -> Vec<u64> {
    let v = {
        let mut p = pool();
        let pos = p.bufs.iter().rposition(|v| v.capacity() >= n);
        pos.map(|i| {
            let v = p.bufs.swap_remove(i);
            p.words -= v.capacity();
            v
        })
    };
    match v {
        Some(mut v) => {
            v.resize(n, 0);
            v.truncate(n);
            v
        }
        None => vec![0u64; n],
    }
}

/// A zeroed buffer of `n` words.
pub(crate) fn take_zeroed(n: usize) -> Vec<u64> {
    let mut v = take_buf(n);
    v.iter_mut().for_each(|x| *x = 0);
    v
}

/// A pooled copy of `src`.
pub(crate) fn take_copy(src: &[u64]) -> Vec<u64> {
    let mut v = take_buf(src.len());
    v.copy_from_slice(src);
    v
}

/// Returns a temporary buffer to the pool.
pub(crate) fn recycle(v: Vec<u64>) {
    if v.capacity() == 0 {
        return;
    }
    let mut p = pool();
    if (p.words + v.capacity()) * 8 <= POOL_BYTES {
        p.words += v.capacity();
        p.bufs.push(v);
    }
}
