//! The one error type of the node layer.

use thiserror::Error;

/// What can go wrong talking to another node. Messages name the node and
/// never include the cookie.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Not `name@host` with sane characters and length.
    #[error("invalid node name {name:?}: {problem}")]
    InvalidNodeName {
        /// The name as given.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The host part does not resolve.
    #[error("cannot resolve host {host:?} of node {node}")]
    UnknownHost {
        /// The host.
        host: String,
        /// The node.
        node: String,
    },
    /// EPMD on the node's host did not answer.
    #[error("EPMD on {host} is not reachable for node {node}: {source}")]
    EpmdUnreachable {
        /// The host.
        host: String,
        /// The node.
        node: String,
        /// Why.
        source: std::io::Error,
    },
    /// EPMD answered but does not know the node.
    #[error("node {node} is not registered with EPMD on {host}")]
    NotRegistered {
        /// The node.
        node: String,
        /// The host.
        host: String,
    },
    /// The node's distribution port refused or dropped the connection.
    #[error("cannot connect to node {node}: {source}")]
    ConnectFailed {
        /// The node.
        node: String,
        /// Why.
        source: std::io::Error,
    },
    /// The node turned the handshake down (its status, e.g. `not_allowed`).
    #[error("node {node} refused the connection: {status}")]
    Refused {
        /// The node.
        node: String,
        /// The status the node sent.
        status: String,
    },
    /// The node answered under another name than the one asked for (a
    /// host alias): OTP refuses such a connection, and so does this node.
    #[error("node {asked} answered as {answered}")]
    OtherName {
        /// The name asked for.
        asked: String,
        /// The name the node gave in the handshake.
        answered: String,
    },
    /// The node already has a connection from this node, made under
    /// another name for it (a host alias): left alone.
    #[error("node {node} is connected to this backend under another name already")]
    AliveElsewhere {
        /// The name asked for.
        node: String,
    },
    /// The cookies do not match.
    #[error("node {node} rejected the cookie (or its cookie differs)")]
    WrongCookie {
        /// The node.
        node: String,
    },
    /// A deadline passed.
    #[error("timed out {during} node {node}")]
    Timeout {
        /// The node.
        node: String,
        /// What was being waited for, e.g. "connecting to".
        during: &'static str,
    },
    /// The wait was interrupted (e.g. the query was cancelled).
    #[error("interrupted while waiting for node {node}")]
    Interrupted {
        /// The node.
        node: String,
    },
    /// The connection closed or failed after it was set up.
    #[error("connection to node {node} lost: {reason}")]
    ConnectionLost {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The node sent something that breaks the protocol.
    #[error("protocol error from node {node}: {what}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        what: String,
    },
    /// The cookie file is missing, unsafe or malformed.
    #[error("cookie file {path}: {problem}")]
    CookieFile {
        /// The file.
        path: String,
        /// What is wrong (never its contents).
        problem: &'static str,
    },
    /// What was to be sent has no encoding (nested too deeply, once wrapped
    /// in its request). Nothing was sent; the connection is sound.
    #[error("cannot send to node {node}: {what}")]
    Unencodable {
        /// The node.
        node: String,
        /// Why.
        what: String,
    },
    /// A message from the node was nested deeper than this node reads. It
    /// was read whole, so the connection is sound; the node broke no
    /// protocol.
    #[error("a message from node {node} is nested deeper than {limit} levels")]
    TooDeep {
        /// The node.
        node: String,
        /// The limit.
        limit: usize,
    },
    /// A message was larger than the configured maximum.
    #[error("message from node {node} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The node.
        node: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
