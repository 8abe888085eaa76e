//! Every blocking step goes through a [`Wait`], so the host decides how to
//! sleep: PostgreSQL with `WaitLatchOrSocket` and `CHECK_FOR_INTERRUPTS`,
//! tests with plain `poll(2)`.

use std::os::fd::RawFd;
use std::time::Instant;

/// What a socket must become ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data (or end of stream) to read.
    Read,
    /// Room to write.
    Write,
}

/// The wait was told to stop (a cancelled query, a terminating backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

/// Blocks until a socket is ready.
pub trait Wait {
    /// Waits until `fd` is ready for `interest` (`Ok(true)`) or `deadline`
    /// passes (`Ok(false)`). May return early with `Ok(true)` spuriously;
    /// callers retry. `Err(Interrupted)` ends the operation.
    fn wait(
        &mut self,
        fd: RawFd,
        interest: Interest,
        deadline: Instant,
    ) -> Result<bool, Interrupted>;

    /// Whether the operation must stop now, without waiting; checked before
    /// every frame, so a cancel is seen even while data keeps arriving. The
    /// default asks [`Wait::wait`] with a deadline of now.
    fn check(&mut self, fd: RawFd) -> Result<(), Interrupted> {
        self.wait(fd, Interest::Read, Instant::now()).map(drop)
    }

    /// Waits until any of `fds` has data to read (`Ok(Some(i))`: `fds[i]`
    /// may be read) or `deadline` passes (`Ok(None)`); for a driver that
    /// serves many connections at once. May return early spuriously;
    /// callers retry. The default uses `poll(2)`, which nothing interrupts:
    /// a host that can be interrupted overrides it.
    fn wait_any(&mut self, fds: &[RawFd], deadline: Instant) -> Result<Option<usize>, Interrupted> {
        poll_any(fds, deadline)
    }
}

/// [`Wait::wait_any`] on `poll(2)`.
pub fn poll_any(fds: &[RawFd], deadline: Instant) -> Result<Option<usize>, Interrupted> {
    let Some(millis) = millis_until(deadline) else {
        return Ok(None);
    };
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: valid pollfds, with their count.
    let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, millis) };
    if ready > 0 {
        return Ok(pollfds.iter().position(|p| p.revents != 0));
    }
    // An error or EINTR: the caller's retry surfaces it; else a timeout.
    Ok((Instant::now() < deadline)
        .then_some(0)
        .filter(|_| !fds.is_empty()))
}

/// Whole milliseconds from now until `deadline`, rounded up so that a wait
/// never ends just before it, at most `i32::MAX`; `None` once it has passed.
pub fn millis_until(deadline: Instant) -> Option<i32> {
    let now = Instant::now();
    (now < deadline).then(|| {
        (deadline - now)
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as i32
    })
}

/// A [`Wait`] on `poll(2)` that nothing interrupts, for tests and tools.
#[derive(Debug, Default, Clone, Copy)]
pub struct PollWait;

impl Wait for PollWait {
    fn wait(
        &mut self,
        fd: RawFd,
        interest: Interest,
        deadline: Instant,
    ) -> Result<bool, Interrupted> {
        let events = match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        };
        let Some(millis) = millis_until(deadline) else {
            return Ok(false);
        };
        let mut pollfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        // Ready, or an error/EINTR that the caller's retry will surface.
        Ok(ready != 0 || Instant::now() < deadline)
    }
}
