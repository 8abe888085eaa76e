//! Any bytes as JSON: parsing never panics, and whatever parses survives the
//! trip through ETF and back to JSON unchanged.
#![no_main]

use erlang_cnode_codec::{etf, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(term) = json::parse_bytes(data) else { return };
    let Ok(bytes) = etf::encode(&term) else { return };
    let decoded = etf::decode(&bytes).expect("our own ETF decodes");
    assert_eq!(decoded, term);
    let text = json::to_string(&decoded).expect("a parsed term writes");
    assert_eq!(json::parse(&text).expect("our own JSON parses"), term, "{text}");
});
