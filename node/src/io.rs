//! Non-blocking socket I/O where every wait goes through a [`Wait`].

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use socket2::{Domain, Socket, Type};

use crate::wait::{Interest, Wait};
use crate::{Error, Result};

/// What the caller was doing, for error messages: "connecting to", …
pub(crate) type During = &'static str;

fn wait_for(
    waiter: &mut dyn Wait,
    fd: std::os::fd::RawFd,
    interest: Interest,
    deadline: Instant,
    node: &str,
    during: During,
) -> Result<()> {
    match waiter.wait(fd, interest, deadline) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Timeout {
            node: node.to_owned(),
            during,
        }),
        Err(_) => Err(Error::Interrupted {
            node: node.to_owned(),
        }),
    }
}

/// Sets `SO_RCVLOWAT`: the socket counts as readable once `bytes` have
/// arrived (or at the end of the stream).
pub(crate) fn set_low_water(stream: &impl AsRawFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket, and an int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Opens a TCP connection without blocking anywhere but in `waiter`.
pub(crate) fn connect(
    addr: SocketAddr,
    waiter: &mut dyn Wait,
    deadline: Instant,
    node: &str,
    during: During,
) -> std::result::Result<TcpStream, ConnectError> {
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(ConnectError::Io)?;
    socket.set_nonblocking(true).map_err(ConnectError::Io)?;
    socket.set_tcp_nodelay(true).map_err(ConnectError::Io)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == ErrorKind::WouldBlock =>
        {
            // A waiter may wake early: wait until the connect has finished.
            loop {
                wait_for(
                    waiter,
                    socket.as_raw_fd(),
                    Interest::Write,
                    deadline,
                    node,
                    during,
                )
                .map_err(ConnectError::Wait)?;
                if let Some(e) = socket.take_error().map_err(ConnectError::Io)? {
                    return Err(ConnectError::Io(e));
                }
                match socket.peer_addr() {
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                    Err(e) => return Err(ConnectError::Io(e)),
                }
            }
        }
        Err(e) => return Err(ConnectError::Io(e)),
    }
    Ok(socket.into())
}

/// Why `connect` failed: the network, or the wait (timeout, interruption).
pub(crate) enum ConnectError {
    Io(std::io::Error),
    Wait(Error),
}

/// Reads exactly `buf.len()` bytes. End of stream is `ConnectionLost`.
pub(crate) fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    waiter: &mut dyn Wait,
    deadline: Instant,
    node: &str,
    during: During,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Error::ConnectionLost {
                    node: node.to_owned(),
                    reason: "closed by the peer".into(),
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_for(
                waiter,
                stream.as_raw_fd(),
                Interest::Read,
                deadline,
                node,
                during,
            )?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::ConnectionLost {
                    node: node.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Writes all of `buf`.
pub(crate) fn write_all(
    stream: &mut TcpStream,
    mut buf: &[u8],
    waiter: &mut dyn Wait,
    deadline: Instant,
    node: &str,
    during: During,
) -> Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => {
                return Err(Error::ConnectionLost {
                    node: node.to_owned(),
                    reason: "write returned 0".into(),
                })
            }
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_for(
                waiter,
                stream.as_raw_fd(),
                Interest::Write,
                deadline,
                node,
                during,
            )?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::ConnectionLost {
                    node: node.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Bytes read from a connection and not consumed yet. Each read takes all
/// the socket has (up to the room left), so frames that arrive together
/// cost one system call.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    start: usize,
}

/// Room a read asks for at least.
const READ_CHUNK: usize = 64 << 10;

impl ReadBuffer {
    pub(crate) fn new() -> ReadBuffer {
        ReadBuffer {
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes not consumed yet.
    pub(crate) fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the first `n` available bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// One read without waiting, with room for at least `want` more bytes:
    /// `Some(n)` bytes arrived, `None` nothing is there yet. End of stream
    /// and errors are `ConnectionLost`.
    pub(crate) fn read_once(
        &mut self,
        stream: &impl AsRawFd,
        want: usize,
        node: &str,
    ) -> Result<Option<usize>> {
        let room = want.max(READ_CHUNK);
        if self.start > 0 && self.buf.capacity() - self.buf.len() < room {
            // Move what is left to the front rather than grow.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK.max(want) {
            // Give back what one large message needed.
            self.buf = Vec::new();
        }
        self.buf.reserve(room);
        let spare = self.buf.spare_capacity_mut();
        loop {
            // SAFETY: reads at most spare.len() bytes into the spare capacity.
            let n =
                unsafe { libc::read(stream.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
            match n {
                0 => {
                    return Err(Error::ConnectionLost {
                        node: node.to_owned(),
                        reason: "closed by the peer".into(),
                    })
                }
                n if n > 0 => {
                    let n = n as usize;
                    // SAFETY: the read initialised these n bytes.
                    unsafe { self.buf.set_len(self.buf.len() + n) };
                    return Ok(Some(n));
                }
                _ => {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        ErrorKind::WouldBlock => return Ok(None),
                        ErrorKind::Interrupted => {}
                        _ => {
                            return Err(Error::ConnectionLost {
                                node: node.to_owned(),
                                reason: e.to_string(),
                            })
                        }
                    }
                }
            }
        }
    }

    /// Reads until at least `need` bytes are available, waiting in
    /// `waiter` until `deadline`.
    pub(crate) fn fill(
        &mut self,
        stream: &impl AsRawFd,
        need: usize,
        waiter: &mut dyn Wait,
        deadline: Instant,
        node: &str,
        during: During,
    ) -> Result<()> {
        while self.available().len() < need {
            let want = need - self.available().len();
            if self.read_once(stream, want, node)?.is_none() {
                wait_for(
                    waiter,
                    stream.as_raw_fd(),
                    Interest::Read,
                    deadline,
                    node,
                    during,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_read_buffer_stays_small_while_frames_stream_through() {
        let (reader, mut writer) = UnixStream::pair().unwrap();
        reader.set_nonblocking(true).unwrap();
        let mut buffer = ReadBuffer::new();
        let chunk = vec![7u8; 1030];
        let mut largest = 0;
        for round in 0..20_000 {
            writer.write_all(&chunk).unwrap();
            while buffer.read_once(&reader, 1, "test").unwrap().is_some() {}
            // Consume in frame-sized pieces, leaving a partial frame behind.
            let frame = 44 + round % 120;
            while buffer.available().len() >= frame {
                buffer.consume(frame);
            }
            largest = largest.max(buffer.buf.capacity());
        }
        assert!(largest <= 4 * READ_CHUNK, "grew to {largest} bytes");
    }
}
