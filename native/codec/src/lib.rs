//! Lossless conversion between Erlang terms and JSON.
//!
//! One mapping serves every path between SQL and the BEAM: the PostgreSQL
//! extension turns call arguments (`jsonb`) into terms and replies back into
//! `jsonb`, and the Elixir NIF gives the very same JSON for the same term.
//! The mapping itself is documented in `docs/term-mapping.md`.
//!
//! * [`etf`] reads and writes the external term format (with or without the
//!   version byte, compressed or not, with distribution-header atom caches).
//! * [`json`] reads JSON text and writes JSON to any [`json::JsonSink`], so a
//!   caller can build its own JSON representation with no text in between.
//! * [`from_eetf`] / [`to_eetf`] bridge to the `eetf::Term` type of `erl_dist`.
//!
//! ```
//! use erlang_cnode_codec::{etf_to_json, json_to_etf};
//! let etf = json_to_etf(r#"{"$tuple": [{"$atom": "ok"}, [1, 2.5, "text"]]}"#).unwrap();
//! assert_eq!(etf_to_json(&etf).unwrap(), r#"{"$tuple":[{"$atom":"ok"},[1,2.5,"text"]]}"#);
//! ```
#![warn(missing_docs)]

mod eetf_term;
mod error;
pub mod etf;
pub mod json;
mod term;
pub mod text;
pub mod view;

pub use eetf_term::{from_eetf, to_eetf, EETF_MAX_DEPTH};
pub use error::{Error, Result};
pub use term::{Bitstring, Closure, ExternalFun, Pid, Port, Reference, Term};

/// Bounds that keep hostile input from exhausting the stack or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists, tuples, maps and closures (default 1,000).
    pub max_depth: usize,
    /// Largest size a compressed term may inflate to, in bytes (default 64 MiB).
    pub max_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 1000,
            max_size: 64 << 20,
        }
    }
}

/// ETF bytes (with or without the version byte, compressed or not) as JSON text.
pub fn etf_to_json(bytes: &[u8]) -> Result<String> {
    // JSON text is usually a little larger than the ETF it came from.
    let mut text = json::JsonText::with_capacity(bytes.len() + bytes.len() / 4 + 16);
    json::write(&etf::decode(bytes)?, &mut text)?;
    Ok(text.into_string())
}

/// ETF bytes written as JSON events into `sink`.
pub fn etf_to_json_sink<S: json::JsonSink>(bytes: &[u8], sink: &mut S) -> Result<(), S::Error> {
    json::write(&etf::decode(bytes)?, sink)
}

/// JSON text as ETF bytes with the version byte.
pub fn json_to_etf(text: &str) -> Result<Vec<u8>> {
    etf::encode(&json::parse(text)?)
}

/// JSON text as an `eetf::Term`.
pub fn json_to_eetf(text: &str) -> Result<eetf::Term> {
    to_eetf(&json::parse(text)?)
}

/// An `eetf::Term` as JSON text.
pub fn eetf_to_json(term: &eetf::Term) -> Result<String> {
    json::to_string(&from_eetf(term)?)
}
