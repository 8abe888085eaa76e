//! JSON: the mapping between terms and JSON documents, written down in
//! `docs/term-mapping.md`.

mod build;
mod parse;
mod sink;
pub mod tags;
mod write;

pub use build::Builder;
pub use parse::{parse, parse_bytes, parse_with};
pub use sink::{JsonSink, JsonText};
pub use write::{write, write_with, MAX_INTEGER_DIGITS};

use crate::{Result, Term};

/// A term as compact JSON text.
///
/// ```
/// use erlang_cnode_codec::{json, Term};
/// let term = Term::Tuple(vec![Term::atom("ok"), Term::Float(7.0)]);
/// assert_eq!(json::to_string(&term).unwrap(), r#"{"$tuple":[{"$atom":"ok"},7.0]}"#);
/// ```
pub fn to_string(term: &Term<'_>) -> Result<String> {
    let mut text = JsonText::with_capacity(256);
    write(term, &mut text)?;
    Ok(text.into_string())
}
