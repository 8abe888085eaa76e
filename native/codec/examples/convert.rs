//! Converts between ETF and JSON on stdin/stdout.
//!
//! `convert to-json` reads ETF bytes and prints JSON;
//! `convert to-etf` reads JSON text and writes ETF bytes (with the version byte).

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("convert: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    let output = match mode.as_str() {
        "to-json" => erlang_cnode_codec::etf_to_json(&input).map(|text| text.into_bytes()),
        "to-etf" => erlang_cnode_codec::json::parse_bytes(&input)
            .and_then(|term| erlang_cnode_codec::etf::encode(&term)),
        _ => {
            eprintln!("usage: convert to-json|to-etf < input > output");
            return ExitCode::from(2);
        }
    };
    match output {
        Ok(bytes) => {
            std::io::stdout().write_all(&bytes).expect("stdout");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convert: {} ({})", e, e.kind());
            ExitCode::FAILURE
        }
    }
}
