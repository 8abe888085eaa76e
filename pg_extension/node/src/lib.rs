//! The hidden Erlang node that lives inside each PostgreSQL backend of
//! erlang_cnode: EPMD lookup, the version 6 distribution handshake and
//! connected-node messaging. It knows nothing of SQL; every blocking step
//! waits through a [`Wait`] that the host supplies, so PostgreSQL can keep
//! every wait interruptible.
#![warn(missing_docs)]

mod call;
mod connection;
mod cookie;
pub mod epmd;
mod error;
pub mod flags;
mod handshake;
mod io;
mod name;
mod nodes;
mod server;
mod wait;

pub use call::{CallId, Class, Outcome};
pub use connection::{control, Connection, LocalNode, Received};
pub use cookie::{read_cookie_file, MAX_COOKIE};
pub use error::{Error, Result};
pub use handshake::Peer;
pub use name::{NodeName, MAX_NODE_NAME};
pub use nodes::{ConnectionInfo, Nodes, Target};
pub use wait::{millis_until, Interest, Interrupted, PollWait, Wait};
