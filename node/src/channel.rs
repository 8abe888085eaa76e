//! Framing on a connected node's stream ("Protocol between Connected
//! Nodes" in `erl_dist_protocol`): each message is a 4-byte length, the
//! `PASS_THROUGH` type and the encoded control message and payload; an
//! empty frame is a tick. The channel owns the stream's state, so the rule
//! that a stream cut off in the middle of a frame is never used again
//! lives here and nowhere else.

use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use erlang_cnode_codec::{etf, Term};

use crate::io::ReadBuffer;
use crate::message::{Control, Received};
use crate::wait::{Interest, Wait};
use crate::{Error, Result};

/// `PASS_THROUGH`: a message with no distribution header follows.
const PASS_THROUGH: u8 = 112;

/// Where the stream stands between frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames: usable.
    Idle,
    /// A frame is being read or written. Seen from outside (after an error
    /// or an unwind left it so), the stream is out of step for good.
    MidFrame,
}

/// The framed stream of one connection.
#[derive(Debug)]
pub(crate) struct Channel {
    stream: TcpStream,
    node: String,
    input: ReadBuffer,
    state: State,
    max_message_size: usize,
    /// Frames sent while corked, written together (one system call for
    /// many requests) when uncorked, when this grows past
    /// [`CORK_LIMIT`], or before the next read.
    output: Vec<u8>,
    corked: bool,
    /// How many bytes the socket gathers before it counts as readable
    /// (`SO_RCVLOWAT`; 1 by default): see [`Channel::gather`].
    low_water: usize,
}

/// The longest a read waits for [`Channel::gather`]'s bytes to be in
/// before it takes what there is.
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// The most bytes kept back while corked.
const CORK_LIMIT: usize = 64 * 1024;

impl Channel {
    /// A channel on a stream whose handshake is done.
    pub(crate) fn new(stream: TcpStream, node: String) -> Channel {
        Channel {
            stream,
            node,
            input: ReadBuffer::new(),
            state: State::Idle,
            max_message_size: 64 << 20,
            output: Vec::new(),
            corked: false,
            low_water: 1,
        }
    }

    /// The peer's name, for errors.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The socket, for waiting on several channels at once.
    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Refuse incoming messages larger than `bytes`.
    pub(crate) fn set_max_message_size(&mut self, bytes: usize) {
        self.max_message_size = bytes;
    }

    /// Whether an operation stopped in the middle of a frame, so that the
    /// connection can only be replaced.
    pub(crate) fn is_broken(&self) -> bool {
        self.state != State::Idle
    }

    fn usable(&self) -> Result<()> {
        if self.is_broken() {
            return Err(Error::ConnectionLost {
                node: self.node.clone(),
                reason: "an earlier operation was cut off in the middle of a frame".into(),
            });
        }
        Ok(())
    }

    /// Runs `step`, which reads or writes one frame: the channel is out of
    /// step for good unless it finishes.
    fn in_frame<T>(&mut self, step: impl FnOnce(&mut Channel) -> Result<T>) -> Result<T> {
        self.usable()?;
        self.state = State::MidFrame;
        let result = step(self);
        if result.is_ok() {
            self.state = State::Idle;
        }
        result
    }

    /// Sends a control message and what follows it.
    pub(crate) fn send(
        &mut self,
        control: &Control,
        payload: Option<&Term<'_>>,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        let encode_error = |e: erlang_cnode_codec::Error| Error::Unencodable {
            node: self.node.clone(),
            what: match e {
                erlang_cnode_codec::Error::TooDeep { limit } => format!(
                    "the term is nested deeper than {limit} levels once wrapped in its request \
                     (a call's arguments sit two levels down)"
                ),
                other => other.to_string(),
            },
        };
        // Room for a request's usual size, so that encoding seldom grows it.
        let mut frame = Vec::with_capacity(256);
        frame.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH]);
        control.encode_into(&mut frame).map_err(encode_error)?;
        if let Some(payload) = payload {
            etf::encode_into(payload, &mut frame).map_err(encode_error)?;
        }
        let len = u32::try_from(frame.len() - 4).map_err(|_| Error::TooLarge {
            node: self.node.clone(),
            size: frame.len(),
            limit: u32::MAX as usize,
        })?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        if self.corked {
            self.usable()?;
            self.output.extend_from_slice(&frame);
            if self.output.len() >= CORK_LIMIT {
                self.flush(waiter, deadline)?;
            }
            return Ok(());
        }
        self.write_frame(&frame, waiter, deadline)
    }

    /// Lets replies gather: a read that finds no whole frame waits (a
    /// moment at most) until `bytes` have arrived, instead of taking each
    /// frame as it comes, one system call and one wake-up each. For a
    /// caller expecting at least that much (many calls in flight); 1 turns
    /// it off.
    pub(crate) fn gather(&mut self, bytes: usize) {
        let bytes = bytes.clamp(1, 1 << 20);
        if bytes != self.low_water && crate::io::set_low_water(&self.stream, bytes).is_ok() {
            self.low_water = bytes;
        }
    }

    /// Keeps frames sent from now on until [`Channel::uncork`] (or until
    /// enough have gathered, or the next read), to write them at once.
    pub(crate) fn cork(&mut self) {
        self.corked = true;
    }

    /// Writes what was kept back, and sends at once again.
    pub(crate) fn uncork(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.corked = false;
        self.flush(waiter, deadline)
    }

    /// Writes the frames kept back, if any. Cut off, it breaks the channel
    /// (some of them may have gone).
    fn flush(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        // The buffer is kept (emptied) for the next frames, not grown anew.
        let mut output = std::mem::take(&mut self.output);
        let written = self.write_frame(&output, waiter, deadline);
        output.clear();
        self.output = output;
        written
    }

    /// Sends a tick (an empty frame), which keeps the peer from dropping an
    /// idle connection.
    pub(crate) fn tick(&mut self, waiter: &mut dyn Wait, deadline: Instant) -> Result<()> {
        self.write_frame(&[0, 0, 0, 0], waiter, deadline)
    }

    fn write_frame(
        &mut self,
        frame: &[u8],
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<()> {
        self.in_frame(|c| {
            crate::io::write_all(
                &mut c.stream,
                frame,
                waiter,
                deadline,
                &c.node,
                "sending to",
            )
        })
    }

    /// Whether a whole frame has been read already.
    fn frame_buffered(&self) -> bool {
        let available = self.input.available();
        available.len() >= 4
            && available.len() - 4
                >= u32::from_be_bytes(available[..4].try_into().expect("4 bytes")) as usize
    }

    /// Whether bytes already read wait to be taken as frames.
    pub(crate) fn has_buffered_input(&self) -> bool {
        !self.input.available().is_empty()
    }

    /// Reads, without waiting, whatever has arrived: whether any bytes are
    /// waiting to be read as frames. End of stream is `ConnectionLost`.
    pub(crate) fn poll_input(&mut self) -> Result<bool> {
        self.usable()?;
        if self.input.available().is_empty() {
            self.input.read_once(&self.stream, 1, &self.node)?;
        }
        Ok(!self.input.available().is_empty())
    }

    /// Waits until `deadline` for the next frame and reads it: a message,
    /// or `None` for a tick (the peer checking that we are alive). The deadline
    /// and the waiter's interruption are checked before every frame, even
    /// when frames keep arriving; once a frame has started, a failure to
    /// read all of it breaks the channel.
    pub(crate) fn next(
        &mut self,
        waiter: &mut dyn Wait,
        deadline: Instant,
    ) -> Result<Option<Received>> {
        self.usable()?;
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                node: self.node.clone(),
                during: "waiting for",
            });
        }
        if waiter.check(self.stream.as_raw_fd()).is_err() {
            return Err(Error::Interrupted {
                node: self.node.clone(),
            });
        }
        // Requests kept back go out before anything is waited for; while
        // whole frames are here already (or come without waiting), they
        // stay back, to go out with the next ones in one write.
        if !self.frame_buffered() {
            let gathering = self.low_water > 1;
            if gathering {
                self.flush(waiter, deadline)?;
                let until = deadline.min(Instant::now() + GATHER_WAIT);
                if waiter
                    .wait(self.stream.as_raw_fd(), Interest::Read, until)
                    .is_err()
                {
                    return Err(Error::Interrupted {
                        node: self.node.clone(),
                    });
                }
            }
            self.input.read_once(&self.stream, 1, &self.node)?;
            if gathering && !self.frame_buffered() {
                // Nothing whole came in that moment: frames are taken as
                // they come again, so that the wait for the rest is not
                // held up.
                self.gather(1);
            }
        }
        if !self.frame_buffered() {
            self.flush(waiter, deadline)?;
        }
        // Nothing is consumed until a whole frame is in: waiting for its
        // first byte leaves the channel idle.
        self.input
            .fill(&self.stream, 1, waiter, deadline, &self.node, "waiting for")?;
        let body = self.in_frame(|c| {
            c.input
                .fill(&c.stream, 4, waiter, deadline, &c.node, "waiting for")?;
            let head = &c.input.available()[..4];
            let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
            if len > c.max_message_size {
                return Err(Error::TooLarge {
                    node: c.node.clone(),
                    size: len,
                    limit: c.max_message_size,
                });
            }
            c.input
                .fill(&c.stream, 4 + len, waiter, deadline, &c.node, "waiting for")?;
            Ok(len)
        })?;
        if body == 0 {
            self.input.consume(4);
            return Ok(None);
        }
        let parsed = self.parse(&self.input.available()[4..4 + body]);
        self.input.consume(4 + body);
        parsed.map(Some)
    }

    fn parse(&self, body: &[u8]) -> Result<Received> {
        let protocol = |what: String| Error::Protocol {
            node: self.node.clone(),
            what,
        };
        let decode_error = |part: &str, e: erlang_cnode_codec::Error| match e {
            erlang_cnode_codec::Error::TooDeep { limit } => Error::TooDeep {
                node: self.node.clone(),
                limit,
            },
            other => protocol(format!("{part}: {other}")),
        };
        if body[0] != PASS_THROUGH {
            return Err(protocol(format!(
                "unexpected message type {} (no distribution header was agreed)",
                body[0]
            )));
        }
        let mut decoder = etf::Decoder::new(&body[1..]);
        let control = decoder
            .next_term()
            .map_err(|e| decode_error("control message", e))?
            .into_owned();
        let mut payload_too_deep = None;
        let payload = if decoder.remaining().is_empty() {
            None
        } else {
            match decoder.next_term() {
                Ok(term) => Some(term.into_owned()),
                // Whose it was is known: the caller reports it to its call.
                Err(erlang_cnode_codec::Error::TooDeep { limit }) => {
                    payload_too_deep = Some(limit);
                    return Ok(Received {
                        control: Control::from_term(control),
                        payload: None,
                        payload_too_deep,
                    });
                }
                Err(e) => return Err(decode_error("message", e)),
            }
        };
        decoder.finish().map_err(|e| protocol(e.to_string()))?;
        Ok(Received {
            control: Control::from_term(control),
            payload,
            payload_too_deep,
        })
    }
}
