//! Keeping cookies out of the server log. PostgreSQL logs the statement
//! that failed (`log_min_error_statement`, `error` by default), and
//! `erlang_connect(node, cookie)` has the cookie in its text, which can
//! also appear as an error's CONTEXT or internal query (when PL/pgSQL runs
//! it). Our own errors ask PostgreSQL not to log the statement
//! (`errhidestmt`); for every other message until the transaction ends,
//! and for as long as the same query string runs (a multi-statement string
//! outlives its transactions), this hook hides statement, context and
//! internal query.
//!
//! Some messages carry the statement in their own text
//! (`log_min_duration_statement`, `auto_explain`, `log_statement`): in
//! every message, the cookies this backend has seen as arguments or in
//! user-mapping options are replaced by `********` where they stand as
//! string literals, and so are the cookie literals of any `… USER MAPPING
//! … OPTIONS (cookie '…')` and `erlang_connect('…', '…')` statement (these
//! are found by their shape: `log_statement` logs a statement before it
//! runs, so only a library already loaded in the session sees it).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    /// Hiding until the transaction ends.
    static IN_TRANSACTION: Cell<bool> = const { Cell::new(false) };
    /// A fingerprint of the query string that held the cookie.
    static QUERY: Cell<Option<u64>> = const { Cell::new(None) };
    /// Cookies seen in this backend, to be masked wherever they appear.
    static SECRETS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// How many cookies are remembered for masking (the oldest is forgotten).
const MAX_SECRETS: usize = 64;

/// What a masked cookie reads as.
const MASK: &str = "********";

/// Masks `secret` in every later message of this backend.
pub fn add_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    SECRETS.with(|secrets| {
        let mut secrets = secrets.borrow_mut();
        if !secrets.iter().any(|s| s == secret) {
            if secrets.len() == MAX_SECRETS {
                secrets.remove(0);
            }
            secrets.push(secret.to_owned());
        }
    });
}

/// The SQL string literal whose opening quote is at `start`: where its
/// text ends (its closing quote, one not doubled, or the text's end) and
/// where what follows it begins.
fn literal_end(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut end = start + 1;
    while end < bytes.len() {
        if bytes[end] == b'\'' {
            if bytes.get(end + 1) == Some(&b'\'') {
                end += 2;
                continue;
            }
            return (end, end + 1);
        }
        end += 1;
    }
    (bytes.len(), bytes.len())
}

/// The position of the first non-blank byte at or after `i`.
fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Where the cookie literals of a statement are, as `(start, end)` of the
/// text between their quotes: after each `cookie` of a statement about a
/// user mapping (`… OPTIONS (cookie '…')`), and the second argument of each
/// `erlang_connect('…', '…')` (the first, if the second is a node name). Found by looking, before the statement runs
/// (`log_statement` logs it before any function is called).
fn cookie_literals(text: &str) -> Vec<(usize, usize)> {
    // ASCII lower-casing keeps byte offsets.
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    if lower.contains("user mapping") {
        for (at, _) in lower.match_indices("cookie") {
            let i = skip_blanks(bytes, at + "cookie".len());
            if bytes.get(i) == Some(&b'\'') {
                found.push((i + 1, literal_end(bytes, i).0));
            }
        }
    }
    for (at, _) in lower.match_indices("erlang_connect") {
        let mut i = skip_blanks(bytes, at + "erlang_connect".len());
        if bytes.get(i) != Some(&b'(') {
            continue;
        }
        i = skip_blanks(bytes, i + 1);
        if bytes.get(i) != Some(&b'\'') {
            continue;
        }
        let first = (i + 1, literal_end(bytes, i).0);
        i = skip_blanks(bytes, literal_end(bytes, i).1);
        if bytes.get(i) != Some(&b',') {
            continue;
        }
        i = skip_blanks(bytes, i + 1);
        if bytes.get(i) == Some(&b'\'') {
            let second = (i + 1, literal_end(bytes, i).0);
            // Swapped arguments (the second reads as a node name): the
            // cookie is the first.
            let swapped = erlang_cnode_node::NodeName::parse(&text[second.0..second.1]).is_ok();
            found.push(if swapped { first } else { second });
        }
    }
    found.sort_unstable();
    found
}

/// `text` with the cookie literals of [`cookie_literals`] masked.
fn mask_statement_cookies(text: &str) -> Option<String> {
    let literals = cookie_literals(text);
    if literals.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in literals {
        if start < copied || end < start {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// `text` with every remembered cookie and user-mapping cookie masked;
/// `None` if nothing needed masking.
fn masked(text: &str) -> Option<String> {
    let mut out = Cow::Borrowed(text);
    SECRETS.with(|secrets| {
        for secret in secrets.borrow().iter() {
            // As a string literal, the way a statement holds it (prose
            // that happens to contain the same word is left alone).
            let literal = format!("'{}'", secret.replace('\'', "''"));
            if out.contains(literal.as_str()) {
                out = Cow::Owned(out.replace(literal.as_str(), &format!("'{MASK}'")));
            }
        }
    });
    if let Some(statement) = mask_statement_cookies(&out) {
        out = Cow::Owned(statement);
    }
    match out {
        Cow::Borrowed(_) => None,
        Cow::Owned(text) => Some(text),
    }
}

/// Masks cookies in one text field of a message being reported.
///
/// # Safety
/// `field` must point to a NUL-terminated string or NULL, allocated in a
/// context that lives as long as the message (ErrorContext).
unsafe fn mask_field(field: &mut *mut std::ffi::c_char) {
    if field.is_null() {
        return;
    }
    // SAFETY: as the caller promises.
    let text = unsafe { std::ffi::CStr::from_ptr(*field) }.to_string_lossy();
    if let Some(masked) = masked(&text) {
        let masked = std::ffi::CString::new(masked).expect("from a C string: no NUL");
        // SAFETY: copies into ErrorContext, where the message lives.
        *field = unsafe { pg_sys::MemoryContextStrdup(pg_sys::ErrorContext, masked.as_ptr()) };
    }
}

/// Whether the running statement holds a cookie this backend knows of.
fn statement_holds_secret() -> bool {
    // SAFETY: the backend's current query, a C string or NULL.
    let text = unsafe {
        let query = debug_query_string;
        (!query.is_null()).then(|| std::ffi::CStr::from_ptr(query).to_string_lossy())
    };
    text.is_some_and(|text| masked(&text).is_some())
}

static mut PREVIOUS_HOOK: pg_sys::emit_log_hook_type = None;

unsafe extern "C" {
    /// The query string the backend is running (postgres.c).
    static debug_query_string: *const std::ffi::c_char;
}

/// A fingerprint of the query string running now (its address is reused
/// by the next one, so its text counts too).
fn current_query() -> Option<u64> {
    use std::hash::{Hash, Hasher};
    // SAFETY: the backend's current query, a C string or NULL.
    let text = unsafe {
        let query = debug_query_string;
        (!query.is_null()).then(|| std::ffi::CStr::from_ptr(query).to_bytes())
    }?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    Some(hasher.finish())
}

/// Hides statements until this transaction ends and while this query
/// string runs.
pub fn hide_statements_until_transaction_end() {
    IN_TRANSACTION.with(|hide| hide.set(true));
    QUERY.with(|query| query.set(current_query()));
}

fn hiding() -> bool {
    if IN_TRANSACTION.with(Cell::get) {
        return true;
    }
    let Some(held) = QUERY.with(Cell::get) else {
        return false;
    };
    if current_query() == Some(held) {
        return true;
    }
    // Another query string runs now: stop comparing.
    QUERY.with(|query| query.set(None));
    false
}

/// Installs the hook and the end-of-transaction reset. From `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once, in the backend's only thread.
    unsafe {
        PREVIOUS_HOOK = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(hide_statement);
        pg_sys::RegisterXactCallback(Some(transaction_ended), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn hide_statement(edata: *mut pg_sys::ErrorData) {
    // SAFETY: PostgreSQL passes the message being reported.
    unsafe {
        if hiding() {
            (*edata).hide_stmt = true;
            (*edata).hide_ctx = true;
            (*edata).internalquery = std::ptr::null_mut();
        } else if statement_holds_secret() {
            (*edata).hide_stmt = true;
        }
        let edata = &mut *edata;
        for field in [
            &mut edata.message,
            &mut edata.detail,
            &mut edata.detail_log,
            &mut edata.hint,
            &mut edata.context,
            &mut edata.internalquery,
        ] {
            mask_field(field);
        }
        if let Some(previous) = PREVIOUS_HOOK {
            previous(edata as *mut pg_sys::ErrorData);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn transaction_ended(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PREPARE
    ) {
        IN_TRANSACTION.with(|hide| hide.set(false));
    }
}
