//! Keeping cookies out of the server log. PostgreSQL logs the statement
//! that failed (`log_min_error_statement`, `error` by default), and
//! `erlang_connect(node, cookie)` has the cookie in its text. Our own errors
//! ask PostgreSQL not to (`errhidestmt`); for any other error until the
//! transaction ends (a cancel, or a later part of the same statement), this
//! hook does.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    static HIDE: Cell<bool> = const { Cell::new(false) };
}

static mut PREVIOUS_HOOK: pg_sys::emit_log_hook_type = None;

/// Hides the statement of every ERROR until this transaction ends.
pub fn hide_statements_until_transaction_end() {
    HIDE.with(|hide| hide.set(true));
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
    // SAFETY: PostgreSQL passes the error being reported.
    unsafe {
        if HIDE.with(Cell::get) && (*edata).elevel >= pgrx::PgLogLevel::ERROR as i32 {
            (*edata).hide_stmt = true;
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
        HIDE.with(|hide| hide.set(false));
    }
}
