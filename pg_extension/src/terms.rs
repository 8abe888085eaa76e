//! Readable views of terms for SQL (`erlang_text`, `erlang_string`,
//! `erlang_proplist`, `erlang_record`): the codec's views, with their
//! errors as SQLSTATEs.

use erlang_cnode_codec::view::{self, ViewError};
use erlang_cnode_codec::Term;

use crate::error::{SqlError, SqlResult};

/// No limit worth the name: `erlang_text` gives the whole term.
const TEXT_LIMIT: usize = usize::MAX / 2;

fn view_error(e: ViewError) -> SqlError {
    let hint = match &e {
        ViewError::NotAString(_) => {
            "erlang_string takes a charlist, an iolist or a binary; \
                                     erlang_text shows any term."
        }
        ViewError::NotAProplist(_) | ViewError::DuplicateKey(_) => {
            "erlang_proplist takes a list of {Key, Value} pairs (or atoms) or a map, \
             with atom or binary keys, each once."
        }
        ViewError::NotARecord { .. } => {
            "erlang_record takes a tuple {Tag, Field1, ...} and one name per field."
        }
    };
    SqlError::new(b"22023", e.to_string()).hint(hint)
}

/// The term as `~p` prints it, on one line.
pub fn text(term: &Term<'_>) -> String {
    // SQL text cannot hold NUL (a node's atoms may).
    erlang_cnode_codec::text::to_erlang_text(term, TEXT_LIMIT).replace('\0', "\\0")
}

/// A charlist, iolist or binary as text.
pub fn string(term: &Term<'_>) -> SqlResult<String> {
    view::string(term).map_err(view_error)
}

/// A proplist, keyword list or map as an object.
pub fn proplist(term: &Term<'static>) -> SqlResult<Term<'static>> {
    view::proplist(term).map_err(view_error)
}

/// A record as an object of `fields`.
pub fn record(term: &Term<'static>, fields: &[String]) -> SqlResult<Term<'static>> {
    view::record(term, fields).map_err(view_error)
}

/// `{"tag": value}`.
pub fn tagged(tag: &str, value: Term<'static>) -> Term<'static> {
    Term::Map(vec![(Term::Binary(tag.as_bytes().to_vec().into()), value)])
}
