//! Memory follows the input, not what its length fields claim. A counting
//! allocator records the peak heap use of decoding hostile inputs (one test
//! in this binary, so nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use erlang_cnode_codec::etf;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth while decoding `bytes`.
fn peak_while_decoding(bytes: &[u8]) -> usize {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let result = etf::decode(bytes);
    assert!(result.is_err(), "hostile input decoded");
    drop(result);
    PEAK.load(Relaxed) - before
}

fn compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn claimed_lengths_do_not_multiply_allocation() {
    // 1,000 nested lists each claiming 4 Gi elements, then 1 MiB of padding
    // that makes every claim look plausible on its own.
    let mut nested = vec![131];
    for _ in 0..1000 {
        nested.extend_from_slice(&[108, 0xff, 0xff, 0xff, 0xff]);
    }
    nested.extend_from_slice(&[97, 1]);
    nested.resize(nested.len() + (1 << 20), 0);
    let peak = peak_while_decoding(&nested);
    assert!(
        peak < 64 * nested.len(),
        "peak {peak} bytes for {} bytes of input",
        nested.len()
    );

    // The same with maps inside a compressed term: 64 KiB that inflates to 64 MiB.
    let mut body = vec![116, 0xff, 0xff, 0xff, 0xff];
    body.resize(64 << 20, 0);
    let mut compressed = vec![131, 80];
    compressed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    compressed.extend_from_slice(&compress(&body));
    let peak = peak_while_decoding(&compressed);
    // The inflated buffer itself is real; what is reserved beside it is small.
    assert!(
        peak < body.len() + (16 << 20),
        "peak {peak} bytes for {} inflated bytes",
        body.len()
    );
}
