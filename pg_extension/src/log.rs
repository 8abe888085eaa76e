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
//! every message, every string literal of a statement about a user mapping
//! or calling `erlang_connect` is replaced by `********` (found by their
//! shape: `log_statement` logs a statement before it runs, so only a
//! library already loaded in the session sees it), and in messages only the
//! server log gets, so are the cookies this backend has seen as arguments
//! or in user-mapping options, where they stand as string literals.

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

/// Forgets every remembered cookie (`DISCARD ALL`).
pub fn forget_secrets() {
    SECRETS.with(|secrets| secrets.borrow_mut().clear());
}

/// Masks `secret` in every later message of this backend that goes only
/// to the server log, where it stands as a string literal.
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

/// Where the string literals of a statement are, as `(start, end)` of the
/// text between their delimiters: `'…'` (quotes doubled inside), `E'…'`
/// (backslash escapes too) and `$tag$…$tag$`. Double-quoted identifiers
/// are skipped over.
fn literals(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && !(bytes[i] == b'"' && bytes.get(i + 1) != Some(&b'"')) {
                    i += if bytes[i] == b'"' { 2 } else { 1 };
                }
                i += 1;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'E' | b'e') && (i < 2 || !ident(bytes[i - 2]));
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() {
                    match bytes[end] {
                        b'\\' if escapes => end += 2,
                        b'\'' if bytes.get(end + 1) == Some(&b'\'') => end += 2,
                        b'\'' => break,
                        _ => end += 1,
                    }
                }
                let end = end.min(bytes.len());
                found.push((start, end));
                i = end + 1;
            }
            b'$' if i == 0 || !ident(bytes[i - 1]) => {
                // $tag$ or $$; not $1 (a parameter).
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|&b| !ident(b))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(close)
                        if bytes[close] == b'$'
                            && bytes.get(i + 1).is_none_or(|b| !b.is_ascii_digit()) =>
                    {
                        let tag = &text[i..=close];
                        let start = close + 1;
                        let end = text[start..].find(tag).map_or(text.len(), |n| start + n);
                        found.push((start, end));
                        i = end + tag.len();
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    found
}

/// Whether a statement may hold a cookie in a literal: one about a user
/// mapping, or one that calls `erlang_connect`. Found by looking, before the
/// statement runs (`log_statement` logs it before any function is called).
fn may_hold_cookie(text: &str) -> bool {
    let words = text
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    words.contains("user mapping") || words.contains("erlang_connect")
}

/// `text` with every string literal masked, if it is a statement that may
/// hold a cookie ([`may_hold_cookie`]).
fn mask_statement_cookies(text: &str) -> Option<String> {
    if !may_hold_cookie(text) {
        return None;
    }
    let literals = literals(text);
    if literals.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in literals {
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// `text` with the literals of statements that may hold a cookie masked,
/// and every cookie this backend has seen; `None` if nothing needed
/// masking.
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
        // Only messages the server log alone gets are masked (statement,
        // duration and auto_explain lines are such): masking what a session
        // sees would tell it whether a string it guessed is a cookie this
        // backend knows, and would garble prose.
        if !edata.output_to_client {
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

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{add_secret, forget_secrets, masked};
    use pgrx::prelude::*;

    fn statement(text: &str) -> String {
        masked(text).unwrap_or_else(|| text.to_owned())
    }

    #[pg_test]
    fn literals_of_statements_that_may_hold_cookies_are_masked() {
        for (text, expected) in [
            (
                "CREATE USER MAPPING FOR a SERVER s OPTIONS (cookie 'c1')",
                "CREATE USER MAPPING FOR a SERVER s OPTIONS (cookie '********')",
            ),
            (
                "create  user\n mapping for a server s options (\"cookie\" E'c\\'2')",
                "create  user\n mapping for a server s options (\"cookie\" E'********')",
            ),
            (
                "ALTER USER MAPPING FOR a SERVER s OPTIONS (SET cookie $x$c'3$x$)",
                "ALTER USER MAPPING FOR a SERVER s OPTIONS (SET cookie $x$********$x$)",
            ),
            (
                "SELECT erlang_connect('n@h', 'it''s')",
                "SELECT erlang_connect('********', '********')",
            ),
            (
                "SELECT erlang_connect(node => 'n@h'::text, cookie => $$c$$)",
                "SELECT erlang_connect(node => '********'::text, cookie => $$********$$)",
            ),
            // Not such a statement: left alone; a parameter is no quote.
            ("SELECT 'cookie', $1", "SELECT 'cookie', $1"),
        ] {
            assert_eq!(statement(text), expected);
        }
    }

    #[pg_test]
    fn remembered_cookies_are_masked_until_forgotten() {
        add_secret("s3cret");
        let text = "duration: 1 ms  statement: SELECT f('s3cret')";
        assert_eq!(
            masked(text).as_deref(),
            Some("duration: 1 ms  statement: SELECT f('********')")
        );
        // Prose that holds the same word is no literal.
        assert_eq!(masked("the s3cret word"), None);
        forget_secrets();
        assert_eq!(masked(text), None);
    }
}
