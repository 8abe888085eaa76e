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
