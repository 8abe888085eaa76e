//! Keeping cookies out of the server log. PostgreSQL logs the statement
//! that failed (`log_min_error_statement`, `error` by default), and
//! `erlang_connect(node, cookie)` has the cookie in its text, which can
//! also appear as an error's CONTEXT or internal query (when PL/pgSQL runs
//! it). Our own errors ask PostgreSQL not to log the statement
//! (`errhidestmt`); for every other message until the transaction ends,
//! and for as long as the same query string runs (a multi-statement string
//! outlives its transactions), this hook hides statement, context and
//! internal query.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    /// Hiding until the transaction ends.
    static IN_TRANSACTION: Cell<bool> = const { Cell::new(false) };
    /// A fingerprint of the query string that held the cookie.
    static QUERY: Cell<Option<u64>> = const { Cell::new(None) };
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
        }
        if let Some(previous) = PREVIOUS_HOOK {
            previous(edata);
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
