//! The hidden Erlang node that lives inside each PostgreSQL backend of
//! erlang_cnode. It knows nothing of SQL; every blocking step waits through
//! a [`Wait`] that the host supplies, so PostgreSQL can keep every wait
//! interruptible.
//!
//! The modules follow the protocol's layers (OTP's `erl_dist_protocol`):
//! [`epmd`] finds a node, `handshake` authenticates, `channel` frames the
//! stream and owns its state, [`message`] encodes and decodes the control
//! messages, `pending` routes replies to the calls under way, `connection`
//! holds every request a node makes of a peer, and `nodes` the connections
//! of one backend; [`delivery`] delivers queued messages over them.
#![warn(missing_docs)]

mod channel;
mod connection;
mod cookie;
pub mod delivery;
pub mod epmd;
mod error;
pub mod flags;
mod handshake;
mod io;
pub mod message;
mod name;
mod nodes;
mod outcome;
mod pending;
mod wait;

pub use connection::{Connection, LocalNode};
pub use cookie::{read_cookie_file, MAX_COOKIE};
pub use delivery::{Courier, Fate, Parcel, Reach, Recipient, Timeouts};
pub use error::{Error, Result};
pub use handshake::Peer;
pub use message::{Control, Received};
pub use name::{NodeName, MAX_NODE_NAME};
pub use nodes::{ConnectionInfo, Nodes, Target};
pub use outcome::{Class, Outcome};
pub use pending::CallId;
pub use wait::{millis_until, poll_any, Interest, Interrupted, PollWait, Wait};
