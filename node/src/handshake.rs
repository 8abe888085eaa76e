//! The client side of the distribution handshake, protocol version 6
//! ("Distribution Handshake" in `erl_dist_protocol`).

use std::net::TcpStream;
use std::time::Instant;

use crate::flags::{MANDATORY_25, OFFERED};
use crate::io;
use crate::wait::Wait;
use crate::{Error, Result};

const DURING: io::During = "in the handshake with";

/// What the peer told us about itself.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its full node name, as it sent it.
    pub name: String,
    /// Its distribution flags.
    pub flags: u64,
    /// Its incarnation.
    pub creation: u32,
}

/// The cookie's digest of a challenge: MD5 of the cookie followed by the
/// challenge in decimal.
fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    let mut input = cookie.as_bytes().to_vec();
    input.extend_from_slice(challenge.to_string().as_bytes());
    md5::compute(&input).0
}

struct Messages<'s> {
    stream: &'s mut TcpStream,
    waiter: &'s mut dyn Wait,
    deadline: Instant,
    node: &'s str,
}

impl Messages<'_> {
    fn send(&mut self, body: &[u8]) -> Result<()> {
        let mut frame = (body.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        io::write_all(
            self.stream,
            &frame,
            self.waiter,
            self.deadline,
            self.node,
            DURING,
        )
    }

    fn recv(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 2];
        io::read_exact(
            self.stream,
            &mut len,
            self.waiter,
            self.deadline,
            self.node,
            DURING,
        )?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        io::read_exact(
            self.stream,
            &mut body,
            self.waiter,
            self.deadline,
            self.node,
            DURING,
        )?;
        Ok(body)
    }

    fn protocol(&self, what: impl Into<String>) -> Error {
        Error::Protocol {
            node: self.node.to_owned(),
            what: what.into(),
        }
    }
}

/// Runs the handshake as `local` (creation `creation`) with `cookie` over a
/// connected stream. The cookie never appears in any error. When the node
/// still has a connection from `local`, it is replaced only if `replace`.
#[allow(clippy::too_many_arguments)]
pub fn handshake(
    replace: bool,
    stream: &mut TcpStream,
    local: &str,
    creation: u32,
    cookie: &str,
    node: &str,
    waiter: &mut dyn Wait,
    deadline: Instant,
) -> Result<Peer> {
    let mut m = Messages {
        stream,
        waiter,
        deadline,
        node,
    };

    // send_name: 'N', Flags(8), Creation(4), NLen(2), Name
    let mut send_name = vec![b'N'];
    send_name.extend_from_slice(&OFFERED.to_be_bytes());
    send_name.extend_from_slice(&creation.to_be_bytes());
    send_name.extend_from_slice(&(local.len() as u16).to_be_bytes());
    send_name.extend_from_slice(local.as_bytes());
    m.send(&send_name)?;

    // recv_status: 's' + status
    let status = m.recv()?;
    match status.split_first() {
        Some((b's', b"ok" | b"ok_simultaneous")) => {}
        // The peer has not yet seen our previous connection close (we
        // replaced it, or it broke): tell it to drop that one and go on.
        Some((b's', b"alive")) if replace => m.send(b"strue")?,
        // Not ours to replace: the name is an alias of a node we are
        // connected to under another name. Its connection stays.
        Some((b's', b"alive")) => {
            m.send(b"sfalse")?;
            return Err(Error::AliveElsewhere {
                node: node.to_owned(),
            });
        }
        Some((b's', other)) => {
            return Err(Error::Refused {
                node: node.to_owned(),
                status: String::from_utf8_lossy(other).into_owned(),
            });
        }
        _ => return Err(m.protocol("expected a status message")),
    }

    // recv_challenge: 'N', Flags(8), Challenge(4), Creation(4), NLen(2), Name
    let challenge = m.recv()?;
    if challenge.len() < 19 || challenge[0] != b'N' {
        return Err(m.protocol("expected a version 6 challenge"));
    }
    let flags = u64::from_be_bytes(challenge[1..9].try_into().expect("8 bytes"));
    let their_challenge = u32::from_be_bytes(challenge[9..13].try_into().expect("4 bytes"));
    let their_creation = u32::from_be_bytes(challenge[13..17].try_into().expect("4 bytes"));
    let name_len = usize::from(u16::from_be_bytes([challenge[17], challenge[18]]));
    let name = challenge
        .get(19..19 + name_len)
        .ok_or_else(|| m.protocol("truncated challenge"))?;
    if flags & MANDATORY_25 != MANDATORY_25 {
        return Err(m.protocol("peer lacks flags that OTP 25 makes mandatory"));
    }

    // send_challenge_reply: 'r', Challenge(4), Digest(16)
    let mut ours = [0u8; 4];
    getrandom::fill(&mut ours)
        .map_err(|e| m.protocol(format!("no randomness for a challenge: {e}")))?;
    let our_challenge = u32::from_be_bytes(ours);
    let mut reply = vec![b'r'];
    reply.extend_from_slice(&our_challenge.to_be_bytes());
    reply.extend_from_slice(&digest(cookie, their_challenge));
    m.send(&reply)?;

    // recv_challenge_ack: 'a', Digest(16). A peer that rejects our digest
    // closes the connection instead.
    let ack = match m.recv() {
        Ok(ack) => ack,
        Err(Error::ConnectionLost { .. }) => {
            return Err(Error::WrongCookie {
                node: node.to_owned(),
            })
        }
        Err(e) => return Err(e),
    };
    if ack.len() != 17 || ack[0] != b'a' {
        return Err(m.protocol("expected a challenge acknowledgement"));
    }
    if ack[1..] != digest(cookie, our_challenge) {
        return Err(Error::WrongCookie {
            node: node.to_owned(),
        });
    }
    Ok(Peer {
        name: String::from_utf8_lossy(name).into_owned(),
        flags,
        creation: their_creation,
    })
}
