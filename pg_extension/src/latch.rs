//! Waiting inside a backend: every wait of the node layer sleeps in
//! `WaitLatchOrSocket`, so a cancel (`pg_cancel_backend`,
//! `statement_timeout`), a terminate or postmaster death ends it at once.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::time::Instant;

use erlang_cnode_node::{millis_until, Interest, Interrupted, Wait};
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

/// The wait set of the socket waited on last: the latch, postmaster death
/// and the socket. Kept between waits (making one costs five system calls)
/// and made anew when the socket is another one: a different descriptor,
/// or the same number reused by a new socket (told by its inode).
struct Cached {
    set: *mut pg_sys::WaitEventSet,
    fd: RawFd,
    inode: (u64, u64),
    socket_events: u32,
}

thread_local! {
    static CACHED: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Position of the socket in the set: after the latch and postmaster death.
const SOCKET_POSITION: i32 = 2;

fn inode(fd: RawFd) -> (u64, u64) {
    // SAFETY: fstat on a descriptor fills the stat buffer or fails.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut stat) == 0 {
            (stat.st_dev, stat.st_ino)
        } else {
            (0, 0)
        }
    }
}

/// The wait set for `fd`, watching it for `socket_events`.
fn wait_set(fd: RawFd, socket_events: u32) -> *mut pg_sys::WaitEventSet {
    let inode = inode(fd);
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if let Some(c) = cached.as_mut() {
            if c.fd == fd && c.inode == inode {
                if c.socket_events != socket_events {
                    // SAFETY: our set, with the socket at SOCKET_POSITION.
                    unsafe {
                        pg_sys::ModifyWaitEvent(
                            c.set,
                            SOCKET_POSITION,
                            socket_events,
                            std::ptr::null_mut(),
                        )
                    };
                    c.socket_events = socket_events;
                }
                return c.set;
            }
        }
        if let Some(old) = cached.take() {
            // SAFETY: a set made below and no longer used.
            unsafe { pg_sys::FreeWaitEventSet(old.set) };
        }
        let none = std::ptr::null_mut();
        // SAFETY: a set that lives as long as the backend, holding the
        // backend's latch, postmaster death and the socket.
        let set = unsafe {
            #[cfg(any(feature = "pg17", feature = "pg18"))]
            let set = pg_sys::CreateWaitEventSet(std::ptr::null_mut(), 3);
            #[cfg(not(any(feature = "pg17", feature = "pg18")))]
            let set = pg_sys::CreateWaitEventSet(pg_sys::TopMemoryContext, 3);
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_LATCH_SET, -1, pg_sys::MyLatch, none);
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_EXIT_ON_PM_DEATH, -1, none.cast(), none);
            let position = pg_sys::AddWaitEventToSet(set, socket_events, fd, none.cast(), none);
            debug_assert_eq!(position, SOCKET_POSITION);
            set
        };
        *cached = Some(Cached {
            set,
            fd,
            inode,
            socket_events,
        });
        set
    })
}

/// Waits on the latch, postmaster death and every socket of `fds` at once,
/// in a wait set made for this wait (several sockets are waited on together
/// rarely: by `erlang_multicall`).
fn wait_any_socket(fds: &[RawFd], millis: i32) -> Option<usize> {
    let none = std::ptr::null_mut();
    let size = fds.len() as i32 + 2;
    // SAFETY: a set of our own, freed below; room for every event.
    unsafe {
        // Owned by the current resource owner on 17 and later: an ERROR
        // before the free below releases it.
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let set = pg_sys::CreateWaitEventSet(pg_sys::CurrentResourceOwner, size);
        #[cfg(not(any(feature = "pg17", feature = "pg18")))]
        let set = pg_sys::CreateWaitEventSet(pg_sys::CurrentMemoryContext, size);
        pg_sys::AddWaitEventToSet(set, pg_sys::WL_LATCH_SET, -1, pg_sys::MyLatch, none);
        pg_sys::AddWaitEventToSet(set, pg_sys::WL_EXIT_ON_PM_DEATH, -1, none.cast(), none);
        for &fd in fds {
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_SOCKET_READABLE, fd, none.cast(), none);
        }
        let mut occurred = vec![pg_sys::WaitEvent::default(); size as usize];
        let n = pg_sys::WaitEventSetWait(
            set,
            libc::c_long::from(millis),
            occurred.as_mut_ptr(),
            size,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::FreeWaitEventSet(set);
        let occurred = &occurred[..n.max(0) as usize];
        if occurred
            .iter()
            .any(|e| e.events & pg_sys::WL_LATCH_SET != 0)
        {
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        // Sockets sit after the latch and postmaster death.
        occurred
            .iter()
            .find(|e| e.events & pg_sys::WL_SOCKET_READABLE != 0)
            .map(|e| (e.pos - 2) as usize)
    }
}

impl Wait for LatchWait {
    fn wait_any(&mut self, fds: &[RawFd], deadline: Instant) -> Result<Option<usize>, Interrupted> {
        if cancel_pending() {
            return Err(Interrupted);
        }
        let Some(millis) = millis_until(deadline) else {
            return Ok(None);
        };
        let ready = wait_any_socket(fds, millis);
        if cancel_pending() {
            return Err(Interrupted);
        }
        // Woken by the latch (or spuriously) before the deadline: the
        // caller looks again.
        Ok(ready.or_else(|| (Instant::now() < deadline && !fds.is_empty()).then_some(0)))
    }

    fn check(&mut self, _fd: RawFd) -> Result<(), Interrupted> {
        if cancel_pending() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    fn wait(
        &mut self,
        fd: RawFd,
        interest: Interest,
        deadline: Instant,
    ) -> Result<bool, Interrupted> {
        if cancel_pending() {
            return Err(Interrupted);
        }
        let Some(millis) = millis_until(deadline) else {
            return Ok(false);
        };
        let socket = match interest {
            Interest::Read => pg_sys::WL_SOCKET_READABLE,
            Interest::Write => pg_sys::WL_SOCKET_WRITEABLE,
        };
        let set = wait_set(fd, socket);
        let mut occurred = [pg_sys::WaitEvent::default(); 3];
        // SAFETY: a valid set, and room for every event it holds.
        let ready = unsafe {
            let n = pg_sys::WaitEventSetWait(
                set,
                libc::c_long::from(millis),
                occurred.as_mut_ptr(),
                occurred.len() as i32,
                pg_sys::PG_WAIT_EXTENSION,
            );
            let occurred = &occurred[..n.max(0) as usize];
            if occurred
                .iter()
                .any(|e| e.events & pg_sys::WL_LATCH_SET != 0)
            {
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
            occurred.iter().any(|e| e.events & socket != 0)
        };
        if cancel_pending() {
            return Err(Interrupted);
        }
        Ok(ready || Instant::now() < deadline)
    }
}
