//! Calls that outlive their statement: `erlang_call_async` sends one and
//! hands out an id, `erlang_await` reads its outcome once. The ids are this
//! backend's (a counter), each tied to the role that sent the call and the
//! connection it went out on; what is not awaited by the end of the
//! session is given up on (`backend::session_ends`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use erlang_cnode_node::{CallId, NodeName};
use pgrx::pg_sys;

use crate::error::{SqlError, SqlResult};

/// One call sent by `erlang_call_async`.
pub struct Request {
    /// The role that sent it (only it may await it).
    pub role: pg_sys::Oid,
    /// The node it went to.
    pub node: NodeName,
    /// The call on that node's connection.
    pub call: CallId,
    /// The generation of that connection.
    pub generation: u64,
    /// When it times out.
    pub deadline: Instant,
    /// `module:function/arity`, for messages.
    pub what: String,
}

thread_local! {
    static REQUESTS: RefCell<(i64, HashMap<i64, Request>)> = RefCell::new((0, HashMap::new()));
}

/// Keeps `request` and returns its id.
pub fn add(request: Request) -> i64 {
    REQUESTS.with(|cell| {
        let mut cell = cell.borrow_mut();
        cell.0 += 1;
        let id = cell.0;
        cell.1.insert(id, request);
        id
    })
}

/// Takes request `id` out, for the current role: `22023` if there is no
/// such request (never sent, or already awaited), `42501` if another role
/// sent it.
pub fn take(id: i64, role: pg_sys::Oid) -> SqlResult<Request> {
    REQUESTS.with(|cell| {
        let mut cell = cell.borrow_mut();
        match cell.1.get(&id) {
            None => Err(SqlError::invalid(format!(
                "no request {id}: it was never sent from this session, or was already awaited"
            ))
            .hint(
                "Each id from erlang_call_async can be awaited once, in the session that sent it.",
            )),
            Some(request) if request.role != role => Err(SqlError::new(
                b"42501",
                format!("request {id} was sent by another role"),
            )),
            Some(_) => Ok(cell.1.remove(&id).expect("found above")),
        }
    })
}

/// Forgets every request (their calls are given up on by the caller).
pub fn forget_all() {
    REQUESTS.with(|cell| cell.borrow_mut().1.clear());
}
