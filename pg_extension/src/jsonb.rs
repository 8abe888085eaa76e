//! `jsonb` ⇄ Erlang terms, through the codec's one mapping
//! (`docs/term-mapping.md`), with no JSON text in between: arguments are
//! read by iterating the `jsonb` value into the codec's [`json::Builder`],
//! results are built with `pushJsonbValue` as the codec's [`JsonSink`]. A
//! result passed back as an argument gives the identical term.

use std::borrow::Cow;
use std::ffi::{CStr, CString};

use erlang_cnode_codec::json::{self, Builder, JsonSink};
use erlang_cnode_codec::{Limits, Term};
use pgrx::pg_sys;

use crate::error::{SqlError, SqlResult};

/// The JSON text of a `jsonb` datum (for what is sent on as text: a typed
/// service's arguments).
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
    String::from_utf8(text).map_err(|_| not_utf8())
}

fn not_utf8() -> SqlError {
    SqlError::new(b"22021", "jsonb argument is not UTF-8")
        .hint("erlang_cnode needs a UTF8 database.")
}

fn not_a_term(what: &str, e: erlang_cnode_codec::Error) -> SqlError {
    SqlError::invalid(format!("{what} is not a term: {e}"))
        .hint("See docs/term-mapping.md for how JSON maps to Erlang terms.")
}

/// The term an argument given as JSON text stands for; `what` names it in
/// errors.
pub fn term_of<'a>(text: &'a str, what: &str) -> SqlResult<Term<'a>> {
    json::parse(text).map_err(|e| not_a_term(what, e))
}

/// The text of a `numeric` (`jsonb` keeps numbers so: never an exponent).
///
/// # Safety
/// `numeric` must be a valid `Numeric`.
unsafe fn numeric_text(numeric: pg_sys::Numeric) -> String {
    // SAFETY: numeric_out takes a numeric datum and returns a C string.
    unsafe {
        let text = pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::numeric_out,
            &[Some(pg_sys::Datum::from(numeric))],
        )
        .expect("numeric_out returns a value");
        let ptr = text.cast_mut_ptr::<std::ffi::c_char>();
        let owned = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        pg_sys::pfree(ptr.cast());
        owned
    }
}

/// A `jsonb` string value's text.
///
/// # Safety
/// `value` must be a `jbvString` value.
unsafe fn string_of(value: &pg_sys::JsonbValue) -> SqlResult<Cow<'static, str>> {
    // SAFETY: a jbvString's pointer and length.
    let bytes = unsafe {
        let s = value.val.string;
        std::slice::from_raw_parts(s.val.cast::<u8>(), s.len.max(0) as usize)
    };
    std::str::from_utf8(bytes)
        .map(|s| Cow::Owned(s.to_owned()))
        .map_err(|_| not_utf8())
}

/// The term a `jsonb` argument stands for, read from the `jsonb` value
/// itself; `what` names it in errors.
///
/// # Safety
/// `datum` must be a non-null `jsonb` datum.
pub unsafe fn term_of_datum(datum: pg_sys::Datum, what: &str) -> SqlResult<Term<'static>> {
    use pg_sys::JsonbIteratorToken::*;
    let mut builder = Builder::new(&Limits::default());
    let not_a_term = |e| not_a_term(what, e);
    // SAFETY: iterates a detoasted jsonb; each value is read as its type
    // says.
    unsafe {
        let jsonb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        let mut it = pg_sys::JsonbIteratorInit(&raw mut (*jsonb).root);
        let mut value: pg_sys::JsonbValue = std::mem::zeroed();
        // A bare scalar is stored as a one-element "raw scalar" array.
        let mut raw_scalar = false;
        loop {
            match pg_sys::JsonbIteratorNext(&mut it, &mut value, false) {
                WJB_DONE => break,
                WJB_BEGIN_ARRAY if value.val.array.rawScalar => raw_scalar = true,
                WJB_END_ARRAY if raw_scalar => {}
                WJB_BEGIN_ARRAY => builder.begin_array().map_err(not_a_term)?,
                WJB_END_ARRAY => builder.end_array().map_err(not_a_term)?,
                WJB_BEGIN_OBJECT => builder.begin_object().map_err(not_a_term)?,
                WJB_END_OBJECT => builder.end_object().map_err(not_a_term)?,
                WJB_KEY => builder.key(string_of(&value)?),
                WJB_VALUE | WJB_ELEM => match value.type_ {
                    pg_sys::jbvType::jbvNull => builder.value(Term::atom("nil")),
                    pg_sys::jbvType::jbvBool => {
                        builder.value(Term::atom(if value.val.boolean { "true" } else { "false" }))
                    }
                    pg_sys::jbvType::jbvString => builder.string(string_of(&value)?),
                    pg_sys::jbvType::jbvNumeric => builder.number(&numeric_text(value.val.numeric)),
                    other => {
                        return Err(SqlError::invalid(format!(
                            "{what} holds a jsonb value of an unexpected kind ({other})"
                        )))
                    }
                }
                .map_err(not_a_term)?,
                _ => {}
            }
        }
    }
    builder.finish().map_err(not_a_term)
}

/// Builds a `jsonb` value from the codec's events with `pushJsonbValue`.
struct JsonbSink {
    state: *mut pg_sys::JsonbParseState,
    /// For each open container, whether it is an object (its scalars are
    /// values) or an array (elements).
    open: Vec<bool>,
    /// The finished value, once the outermost container is closed.
    result: *mut pg_sys::JsonbValue,
}

impl JsonbSink {
    fn push(&mut self, token: pg_sys::JsonbIteratorToken::Type, value: *mut pg_sys::JsonbValue) {
        // SAFETY: our parse state, and a value that lives until the jsonb is
        // built (strings are palloc'd copies).
        self.result = unsafe { pg_sys::pushJsonbValue(&mut self.state, token, value) };
    }

    fn scalar(&mut self, mut value: pg_sys::JsonbValue) {
        use pg_sys::JsonbIteratorToken::*;
        match self.open.last() {
            Some(true) => self.push(WJB_VALUE, &mut value),
            Some(false) => self.push(WJB_ELEM, &mut value),
            None => {
                // A bare scalar: a one-element "raw scalar" array.
                // SAFETY: a zeroed JsonbValue is a valid start.
                let mut array: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
                array.type_ = pg_sys::jbvType::jbvArray;
                array.val.array.rawScalar = true;
                self.push(WJB_BEGIN_ARRAY, &mut array);
                self.push(WJB_ELEM, &mut value);
                self.push(WJB_END_ARRAY, std::ptr::null_mut());
            }
        }
    }

    fn text_value(text: &str) -> pg_sys::JsonbValue {
        // SAFETY: a palloc'd copy that outlives the builder; a zeroed
        // JsonbValue filled in as a string.
        unsafe {
            let copy = pg_sys::palloc(text.len().max(1)).cast::<std::ffi::c_char>();
            std::ptr::copy_nonoverlapping(text.as_ptr(), copy.cast(), text.len());
            let mut value: pg_sys::JsonbValue = std::mem::zeroed();
            value.type_ = pg_sys::jbvType::jbvString;
            value.val.string.len = text.len() as i32;
            value.val.string.val = copy;
            value
        }
    }

    fn numeric_value(numeric: pg_sys::Numeric) -> pg_sys::JsonbValue {
        // SAFETY: a zeroed JsonbValue filled in as a numeric.
        unsafe {
            let mut value: pg_sys::JsonbValue = std::mem::zeroed();
            value.type_ = pg_sys::jbvType::jbvNumeric;
            value.val.numeric = numeric;
            value
        }
    }
}

impl JsonSink for JsonbSink {
    type Error = erlang_cnode_codec::Error;

    fn null(&mut self) -> Result<(), Self::Error> {
        // SAFETY: a zeroed JsonbValue is jbvNull.
        let mut value: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
        value.type_ = pg_sys::jbvType::jbvNull;
        self.scalar(value);
        Ok(())
    }

    fn bool(&mut self, b: bool) -> Result<(), Self::Error> {
        // SAFETY: a zeroed JsonbValue filled in as a boolean.
        let mut value: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
        value.type_ = pg_sys::jbvType::jbvBool;
        value.val.boolean = b;
        self.scalar(value);
        Ok(())
    }

    fn int(&mut self, i: i64) -> Result<(), Self::Error> {
        // SAFETY: makes a numeric from an int64.
        let numeric = unsafe { pg_sys::int64_to_numeric(i) };
        self.scalar(Self::numeric_value(numeric));
        Ok(())
    }

    fn number(&mut self, text: &str) -> Result<(), Self::Error> {
        let text = CString::new(text).expect("JSON number text has no NUL");
        // SAFETY: numeric_in(cstring, typelem, typmod) returns a numeric.
        let numeric = unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::numeric_in,
                &[
                    Some(pg_sys::Datum::from(text.as_ptr())),
                    Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
                    Some(pg_sys::Datum::from(-1i32)),
                ],
            )
            .expect("numeric_in returns a value")
        };
        self.scalar(Self::numeric_value(numeric.cast_mut_ptr()));
        Ok(())
    }

    fn string(&mut self, text: &str) -> Result<(), Self::Error> {
        self.scalar(Self::text_value(text));
        Ok(())
    }

    fn begin_array(&mut self, _len: usize) -> Result<(), Self::Error> {
        self.push(
            pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY,
            std::ptr::null_mut(),
        );
        self.open.push(false);
        Ok(())
    }

    fn end_array(&mut self) -> Result<(), Self::Error> {
        self.open.pop();
        self.push(
            pg_sys::JsonbIteratorToken::WJB_END_ARRAY,
            std::ptr::null_mut(),
        );
        Ok(())
    }

    fn begin_object(&mut self, _len: usize) -> Result<(), Self::Error> {
        self.push(
            pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT,
            std::ptr::null_mut(),
        );
        self.open.push(true);
        Ok(())
    }

    fn key(&mut self, key: &str) -> Result<(), Self::Error> {
        let mut value = Self::text_value(key);
        self.push(pg_sys::JsonbIteratorToken::WJB_KEY, &mut value);
        Ok(())
    }

    fn end_object(&mut self) -> Result<(), Self::Error> {
        self.open.pop();
        self.push(
            pg_sys::JsonbIteratorToken::WJB_END_OBJECT,
            std::ptr::null_mut(),
        );
        Ok(())
    }
}

/// A `jsonb` datum for `term`, built directly.
pub fn datum_of(term: &Term<'_>, node: &str) -> SqlResult<pg_sys::Datum> {
    let mut sink = JsonbSink {
        state: std::ptr::null_mut(),
        open: Vec::new(),
        result: std::ptr::null_mut(),
    };
    json::write(term, &mut sink).map_err(|e| {
        SqlError::new(
            b"22023",
            format!("reply from node {node} has no JSON form: {e}"),
        )
    })?;
    // SAFETY: the finished value of a complete document.
    let jsonb = unsafe { pg_sys::JsonbValueToJsonb(sink.result) };
    Ok(pg_sys::Datum::from(jsonb))
}
