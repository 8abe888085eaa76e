//! Any bytes: decoding never panics, and whatever decodes survives the trip
//! through JSON and back to ETF unchanged.
#![no_main]

use erlang_cnode_codec::{etf, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The same bytes as a distribution header followed by a term.
    let mut cache = etf::AtomCache::default();
    if let Ok(header) = cache.read_header(data) {
        let _ = etf::Decoder::new(&data[header.len..]).with_atom_refs(&header.atom_refs).next_term();
    }
    let Ok(term) = etf::decode(data) else { return };
    let Ok(text) = json::to_string(&term) else { return };
    let parsed = json::parse(&text).expect("our own JSON parses");
    assert_eq!(parsed, term, "JSON round trip: {text}");
    let bytes = etf::encode(&parsed).expect("a decoded term encodes");
    assert_eq!(etf::decode(&bytes).expect("our own ETF decodes"), term);
});
