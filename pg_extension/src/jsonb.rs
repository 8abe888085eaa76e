//! `jsonb` ⇄ Erlang terms, through the codec's one mapping
//! (`docs/term-mapping.md`): a result passed back as an argument gives the
//! identical term.

use std::ffi::{CStr, CString};

use erlang_cnode_codec::{json, Term};
use pgrx::pg_sys;

use crate::error::{SqlError, SqlResult};

/// The JSON text of a `jsonb` datum.
///
/// # Safety
/// `datum` must be a non-null `jsonb` datum.
pub unsafe fn text_of(datum: pg_sys::Datum) -> SqlResult<String> {
    // SAFETY: a jsonb datum, detoasted to a plain 4-byte-header varlena.
    let text = unsafe {
        let jsonb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        let size = pgrx::varlena::varsize_any(jsonb.cast()) as i32;
        let text = pg_sys::JsonbToCString(std::ptr::null_mut(), &raw mut (*jsonb).root, size);
        let owned = CStr::from_ptr(text).to_bytes().to_vec();
        pg_sys::pfree(text.cast());
        owned
    };
    String::from_utf8(text).map_err(|_| {
        SqlError::new(b"22021", "jsonb argument is not UTF-8")
            .hint("erlang_cnode needs a UTF8 database.")
    })
}

/// The term an argument stands for; `what` names it in errors.
pub fn term_of<'a>(text: &'a str, what: &str) -> SqlResult<Term<'a>> {
    json::parse(text).map_err(|e| {
        SqlError::invalid(format!("{what} is not a term: {e}"))
            .hint("See docs/term-mapping.md for how JSON maps to Erlang terms.")
    })
}

/// A `jsonb` datum for `term`.
pub fn datum_of(term: &Term<'_>, node: &str) -> SqlResult<pg_sys::Datum> {
    let text = json::to_string(term).map_err(|e| {
        SqlError::new(
            b"22023",
            format!("reply from node {node} has no JSON form: {e}"),
        )
    })?;
    // The codec never writes NUL: \u0000 is not valid in jsonb.
    let text = CString::new(text).expect("the codec never writes NUL");
    // SAFETY: jsonb_in reads a C string and returns a jsonb datum.
    let datum = unsafe {
        pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(pg_sys::Datum::from(text.as_ptr()))],
        )
    };
    Ok(datum.expect("jsonb_in returns a value"))
}
