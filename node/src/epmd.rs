//! EPMD lookup: `PORT_PLEASE2_REQ` ("EPMD Protocol" in the ERTS user's guide).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use crate::io::{self, ConnectError};
use crate::name::NodeName;
use crate::wait::Wait;
use crate::{Error, Result};

/// EPMD's well-known port.
pub const EPMD_PORT: u16 = 4369;

/// The port EPMD listens on: `ERL_EPMD_PORT` if set, as `erl` reads it,
/// else 4369.
pub fn epmd_port() -> u16 {
    std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or(EPMD_PORT)
}
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
/// Distribution protocol version 6 (OTP 23+), the only one spoken here.
const PROTOCOL_VERSION: u16 = 6;

/// The host's address, resolved with the standard library (no helper threads).
pub fn resolve(node: &NodeName) -> Result<std::net::IpAddr> {
    let unknown = || Error::UnknownHost {
        host: node.host().to_owned(),
        node: node.to_string(),
    };
    let addrs: Vec<SocketAddr> = (node.host(), 0)
        .to_socket_addrs()
        .map_err(|_| unknown())?
        .collect();
    // Prefer IPv4, which `erl` listens on by default.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip())
        .ok_or_else(unknown)
}

/// Asks EPMD on the node's host for the node's distribution address.
pub fn lookup(node: &NodeName, waiter: &mut dyn Wait, deadline: Instant) -> Result<SocketAddr> {
    let name = node.to_string();
    let ip = resolve(node)?;
    let unreachable = |source| Error::EpmdUnreachable {
        host: node.host().to_owned(),
        node: name.clone(),
        source,
    };
    let mut stream = match io::connect(
        SocketAddr::new(ip, epmd_port()),
        waiter,
        deadline,
        &name,
        "asking EPMD for",
    ) {
        Ok(stream) => stream,
        Err(ConnectError::Io(e)) => return Err(unreachable(e)),
        Err(ConnectError::Wait(e)) => return Err(e),
    };
    let alive = node.alive().as_bytes();
    let mut request = Vec::with_capacity(3 + alive.len());
    request.extend_from_slice(&(1 + alive.len() as u16).to_be_bytes());
    request.push(PORT_PLEASE2_REQ);
    request.extend_from_slice(alive);
    io::write_all(
        &mut stream,
        &request,
        waiter,
        deadline,
        &name,
        "asking EPMD for",
    )?;

    let mut head = [0u8; 2];
    match io::read_exact(
        &mut stream,
        &mut head,
        waiter,
        deadline,
        &name,
        "asking EPMD for",
    ) {
        Ok(()) => {}
        // EPMD closes at once on a name it does not know in some versions.
        Err(Error::ConnectionLost { .. }) => return Err(not_registered(node)),
        Err(e) => return Err(e),
    }
    if head[0] != PORT2_RESP {
        return Err(Error::Protocol {
            node: name,
            what: format!("EPMD answered with tag {}", head[0]),
        });
    }
    if head[1] != 0 {
        return Err(not_registered(node));
    }
    // PortNo(2) NodeType(1) Protocol(1) HighestVersion(2) LowestVersion(2)
    let mut fields = [0u8; 8];
    io::read_exact(
        &mut stream,
        &mut fields,
        waiter,
        deadline,
        &name,
        "asking EPMD for",
    )?;
    let port = u16::from_be_bytes([fields[0], fields[1]]);
    let (highest, lowest) = (
        u16::from_be_bytes([fields[4], fields[5]]),
        u16::from_be_bytes([fields[6], fields[7]]),
    );
    if !(lowest..=highest).contains(&PROTOCOL_VERSION) {
        return Err(Error::Protocol {
            node: name,
            what: format!("node speaks distribution versions {lowest}..{highest}, this client only 6 (OTP 23+)"),
        });
    }
    Ok(SocketAddr::new(ip, port))
}

fn not_registered(node: &NodeName) -> Error {
    Error::NotRegistered {
        node: node.to_string(),
        host: node.host().to_owned(),
    }
}
