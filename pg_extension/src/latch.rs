//! Waiting inside a backend: every wait of the node layer sleeps in
//! `WaitLatchOrSocket`, so a cancel (`pg_cancel_backend`,
//! `statement_timeout`), a terminate or postmaster death ends it at once.

use std::os::fd::RawFd;
use std::time::Instant;

use erlang_cnode_node::{Interest, Interrupted, Wait};
use pgrx::pg_sys;

/// The backend's [`Wait`]: the latch, the socket and a timeout at once.
#[derive(Debug, Default)]
pub struct LatchWait;

/// Whether the statement is being cancelled or the backend terminated.
/// Interrupts that end nothing (a configuration reload, a barrier) are
/// processed here and the wait goes on.
pub fn cancel_pending() -> bool {
    // SAFETY: plain reads of flags that signal handlers set.
    let (pending, cancel, die) = unsafe {
        (
            std::ptr::read_volatile(&raw const pg_sys::InterruptPending),
            std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending),
            std::ptr::read_volatile(&raw const pg_sys::ProcDiePending),
        )
    };
    if pending == 0 {
        return false;
    }
    if cancel != 0 || die != 0 {
        return true;
    }
    pgrx::check_for_interrupts!();
    false
}

impl Wait for LatchWait {
    fn wait(
        &mut self,
        fd: RawFd,
        interest: Interest,
        deadline: Instant,
    ) -> Result<bool, Interrupted> {
        if cancel_pending() {
            return Err(Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        // Round up so a wait never ends just before its deadline.
        let millis = (deadline - now)
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as libc::c_long;
        let socket = match interest {
            Interest::Read => pg_sys::WL_SOCKET_READABLE,
            Interest::Write => pg_sys::WL_SOCKET_WRITEABLE,
        };
        let events =
            pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH | socket;
        // SAFETY: MyLatch is the backend's own latch; fd is an open socket.
        let happened = unsafe {
            let happened = pg_sys::WaitLatchOrSocket(
                pg_sys::MyLatch,
                events as i32,
                fd,
                millis,
                pg_sys::PG_WAIT_EXTENSION,
            );
            if happened & pg_sys::WL_LATCH_SET as i32 != 0 {
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
            happened
        };
        if cancel_pending() {
            return Err(Interrupted);
        }
        Ok(happened & socket as i32 != 0 || Instant::now() < deadline)
    }
}
