//! The SQL functions. Their definitions are in `sql/functions.sql`; each
//! body here returns a `SqlResult`, and its ERROR is raised only after
//! everything the body held is dropped, with the SQLSTATE of
//! [`crate::error`].

use erlang_cnode_codec::Term;
use erlang_cnode_node::{Class, ConnectionInfo};
use pgrx::fcinfo::{pg_getarg, pg_getarg_datum};
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::prelude::*;

use crate::allow::{holds_fun, Request};
use crate::backend::{self, waiter};
use crate::error::{self, SqlError, SqlResult};
use crate::server::{self, CookieSource, Endpoint};
use crate::{jsonb, log, outbox, requests, targets, terms};

/// Defines the C entry points of V1 functions whose bodies return a
/// `SqlResult<Datum>`.
macro_rules! sql_functions {
    ($($symbol:ident, $finfo:ident => $runner:ident($body:path);)*) => {$(
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            static V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $symbol(fcinfo: FunctionCallInfo) -> Datum {
            // SAFETY: PostgreSQL calls this with a valid fcinfo.
            unsafe { $runner(fcinfo, $body) }
        }
    )*};
}

// `run_checked`: a role with no right at all gets 42501 before anything
// else. `erlang_connect(node, cookie)` checks (more) itself, hiding the
// statement; the validator is PostgreSQL's.
sql_functions! {
    erlang_connect_with_cookie, pg_finfo_erlang_connect_with_cookie => run(connect_with_cookie);
    erlang_connect, pg_finfo_erlang_connect => run_checked(connect);
    erlang_disconnect, pg_finfo_erlang_disconnect => run_checked(disconnect);
    erlang_ping, pg_finfo_erlang_ping => run_checked(ping);
    erlang_call, pg_finfo_erlang_call => run_checked(call);
    erlang_gen_call, pg_finfo_erlang_gen_call => run_checked(gen_call);
    erlang_cast, pg_finfo_erlang_cast => run_checked(cast);
    erlang_send, pg_finfo_erlang_send => run_checked(send);
    erlang_service_call, pg_finfo_erlang_service_call => run_checked(service_call);
    erlang_service_catalog, pg_finfo_erlang_service_catalog => run_checked(service_catalog);
    erlang_cnode_fdw_validator, pg_finfo_erlang_cnode_fdw_validator => run(fdw_validator);
    erlang_call_async, pg_finfo_erlang_call_async => run_checked(call_async);
    erlang_await, pg_finfo_erlang_await => run_checked(await_request);
    erlang_call_many_json, pg_finfo_erlang_call_many_json => run_checked(call_many);
    erlang_multicall_json, pg_finfo_erlang_multicall_json => run_checked(multicall);
    erlang_send_on_commit, pg_finfo_erlang_send_on_commit => run_checked(send_on_commit);
    erlang_cast_on_commit, pg_finfo_erlang_cast_on_commit => run_checked(cast_on_commit);
    erlang_outbox_retry, pg_finfo_erlang_outbox_retry => run_checked(outbox_retry);
    erlang_outbox_purge, pg_finfo_erlang_outbox_purge => run_checked(outbox_purge);
    erlang_try_call, pg_finfo_erlang_try_call => run_checked(try_call);
    erlang_text, pg_finfo_erlang_text => run(term_text);
    erlang_string, pg_finfo_erlang_string => run(term_string);
    erlang_proplist, pg_finfo_erlang_proplist => run(term_proplist);
    erlang_record, pg_finfo_erlang_record => run(term_record);
    erlang_last_error, pg_finfo_erlang_last_error => run(last_error);
    erlang_charlist, pg_finfo_erlang_charlist => run(term_charlist);
    erlang_send_to, pg_finfo_erlang_send_to => run_checked(send_to);
    erlang_send_on_commit_to, pg_finfo_erlang_send_on_commit_to => run_checked(send_on_commit_to);
    erlang_gen_call_to, pg_finfo_erlang_gen_call_to => run_checked(gen_call_to);
}

/// Runs `body` with PostgreSQL errors and Rust panics inside it reported
/// by pgrx, and raises its own `SqlError` once nothing is left to drop.
#[inline(always)]
unsafe fn run(
    fcinfo: FunctionCallInfo,
    body: unsafe fn(FunctionCallInfo) -> SqlResult<Datum>,
) -> Datum {
    // SAFETY: as for guarded.
    unsafe { guarded(fcinfo, |fcinfo| body(fcinfo)) }
}

/// [`run`], after refusing a role with no right at all.
#[inline(always)]
unsafe fn run_checked(
    fcinfo: FunctionCallInfo,
    body: unsafe fn(FunctionCallInfo) -> SqlResult<Datum>,
) -> Datum {
    // SAFETY: as for guarded.
    unsafe {
        guarded(fcinfo, |fcinfo| {
            server::require_some_right()?;
            body(fcinfo)
        })
    }
}

/// Runs `body` inside pgrx's guard, then raises its error, if any, from
/// this (outermost) frame.
#[inline(always)]
unsafe fn guarded(
    fcinfo: FunctionCallInfo,
    body: impl FnOnce(FunctionCallInfo) -> SqlResult<Datum>,
) -> Datum {
    // SAFETY: called from the outermost frame of a V1 function.
    let result = unsafe { pg_sys::submodules::panic::pgrx_extern_c_guard(|| body(fcinfo)) };
    match result {
        Ok(datum) => datum,
        // SAFETY: nothing in this frame needs dropping.
        Err(error) => unsafe { error::raise(error) },
    }
}

unsafe fn text_arg(fcinfo: FunctionCallInfo, n: usize, name: &str) -> SqlResult<String> {
    // SAFETY: argument n is text.
    unsafe { pg_getarg::<String>(fcinfo, n) }
        .ok_or_else(|| SqlError::new(b"22004", format!("{name} must not be NULL")))
}

/// A `jsonb` argument as JSON text (for what travels on as text: a typed
/// service's arguments).
unsafe fn jsonb_text_arg(fcinfo: FunctionCallInfo, n: usize, name: &str) -> SqlResult<String> {
    // SAFETY: argument n is jsonb.
    match unsafe { pg_getarg_datum(fcinfo, n) } {
        Some(datum) => unsafe { jsonb::text_of(datum) },
        None => Err(SqlError::new(b"22004", format!("{name} must not be NULL"))),
    }
}

/// A `jsonb` argument as the term it stands for, read from the `jsonb`
/// value itself (no JSON text).
unsafe fn jsonb_arg(fcinfo: FunctionCallInfo, n: usize, name: &str) -> SqlResult<Term<'static>> {
    // SAFETY: argument n is jsonb.
    match unsafe { pg_getarg_datum(fcinfo, n) } {
        Some(datum) => unsafe { jsonb::term_of_datum(datum, name) },
        None => Err(SqlError::new(b"22004", format!("{name} must not be NULL"))),
    }
}

unsafe fn timeout_arg(fcinfo: FunctionCallInfo, n: usize) -> Option<i32> {
    // SAFETY: argument n is integer.
    unsafe { pg_getarg::<i32>(fcinfo, n) }
}

/// Arguments 1 and 2 of `erlang_call` and `erlang_cast`: module and
/// function names.
unsafe fn module_and_function(fcinfo: FunctionCallInfo) -> SqlResult<(String, String)> {
    let module = unsafe { text_arg(fcinfo, 1, "module") }?;
    let function = unsafe { text_arg(fcinfo, 2, "function") }?;
    atom_arg(&module, "module")?;
    atom_arg(&function, "function")?;
    Ok((module, function))
}

/// A module, function or registered name: an atom.
fn atom_arg(text: &str, name: &str) -> SqlResult<()> {
    if text.is_empty() || text.chars().count() > 255 {
        return Err(SqlError::invalid(format!(
            "{name} must be an atom name of 1 to 255 characters"
        )));
    }
    Ok(())
}

/// The list of arguments of a call: a JSON array.
fn call_args(args: Term<'static>) -> SqlResult<Vec<Term<'static>>> {
    match args {
        Term::List(args) => Ok(args),
        _ => Err(
            SqlError::invalid("args must be a JSON array of the function's arguments")
                .hint("For example '[1, \"two\"]'::jsonb; '[]' for none."),
        ),
    }
}

/// A node argument: a node name, or a server name (no `@`).
unsafe fn endpoint_arg(fcinfo: FunctionCallInfo) -> SqlResult<Endpoint> {
    server::resolve(&unsafe { text_arg(fcinfo, 0, "node") }?)
}

/// A cookie: 1 to 255 printable ASCII characters. Never echoed.
pub fn check_cookie(cookie: &str) -> SqlResult<()> {
    let printable = cookie.bytes().all(|b| (b' '..=b'~').contains(&b));
    if cookie.is_empty() || cookie.len() > erlang_cnode_node::MAX_COOKIE || !printable {
        return Err(SqlError::invalid(format!(
            "cookie must be 1 to {} printable ASCII characters",
            erlang_cnode_node::MAX_COOKIE
        ))
        .hide_statement());
    }
    Ok(())
}

/// `erlang_connect(node, cookie)`: for members of `erlang_cnode_user`.
unsafe fn connect_with_cookie(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let hide = |e: SqlError| e.hide_statement();
    // Refused first, with the statement hidden: a role without full access
    // neither connects with a cookie nor gets to mask or hide anything in
    // this backend's log.
    if !server::full_access(server::current_role()) {
        return Err(SqlError::new(
            b"42501",
            "permission denied: only members of erlang_cnode_user may connect with a cookie",
        )
        .hint("Other roles connect through a server and their user mapping: erlang_connect('server').")
        .hide_statement());
    }
    // The statement holds the cookie: keep it out of the log, whatever fails.
    log::hide_statements_until_transaction_end();
    let node = unsafe { text_arg(fcinfo, 0, "node") }.map_err(hide)?;
    let cookie = unsafe { text_arg(fcinfo, 1, "cookie") }.map_err(hide)?;
    log::add_secret(&cookie);
    // Nothing here echoes the node argument: swapped, it is the cookie.
    let swapped = || {
        SqlError::invalid("invalid node or server name (not shown): expected name@host or a server")
            .hint("The node comes first, the cookie second.")
            .hide_statement()
    };
    // A cookie that reads as a node name or names a server is taken for
    // swapped arguments, before any name is looked up (DNS would see the
    // cookie).
    if erlang_cnode_node::NodeName::parse(&cookie).is_ok() || server::is_server(&cookie) {
        log::add_secret(&node);
        return Err(swapped());
    }
    check_cookie(&cookie)?;
    let endpoint = server::resolve(&node).map_err(|e| match e.sqlstate() {
        "22023" | "42704" => swapped(),
        _ => e.hide_statement(),
    })?;
    let deadline = std::time::Instant::now() + endpoint.connect_timeout();
    backend::connect(&endpoint, &cookie, deadline).map_err(hide)?;
    debug1!(
        "erlang_cnode: connected to {} with the given cookie",
        endpoint.node
    );
    Ok(Datum::from(true))
}

/// `erlang_connect(node)`: with the cookie of the role's user mapping for
/// a server, else the server OS user's cookie file.
unsafe fn connect(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let deadline = std::time::Instant::now() + endpoint.connect_timeout();
    let cookie = match endpoint.cookie_source()? {
        CookieSource::Mapping(cookie) => cookie,
        CookieSource::File => backend::cookie_file_for(&endpoint.node, deadline)?,
    };
    backend::connect(&endpoint, &cookie, deadline)?;
    debug1!("erlang_cnode: connected to {}", endpoint.node);
    Ok(Datum::from(true))
}

/// `erlang_disconnect(node)`: whether there was a connection.
unsafe fn disconnect(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let existed = backend::disconnect(&endpoint)?;
    debug1!(
        "erlang_cnode: disconnected from {} (was connected: {existed})",
        endpoint.node
    );
    Ok(Datum::from(existed))
}

/// `erlang_ping(node)`: `false` when the node cannot be reached.
unsafe fn ping(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let deadline = std::time::Instant::now() + endpoint.connect_timeout();
    let pong = backend::request(&endpoint, |nodes, target| {
        nodes.ping(target, &mut waiter(), deadline)
    })?;
    Ok(Datum::from(pong))
}

/// `erlang_call(node, module, function, args, timeout_ms)`.
unsafe fn call(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let args = call_args(unsafe { jsonb_arg(fcinfo, 3, "args") }?)?;
    let arity = args.len();
    let request = Request::Call {
        module: &module,
        function: &function,
        arity,
    };
    endpoint.check(&request, args.iter().any(holds_fun))?;
    let limit = endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 4) })?;
    let deadline = std::time::Instant::now() + limit;
    let outcome = backend::request(&endpoint, |nodes, target| {
        nodes.call(target, &module, &function, args, &mut waiter(), deadline)
    })
    .map_err(|e| e.naming_the_call(&request.describe(), limit, true))?;
    let undef = is_undef(&outcome);
    result(outcome, &request.describe(), &endpoint.node.to_string()).map_err(|e| {
        if undef {
            elixir_hint(e, &endpoint, &module)
        } else {
            e
        }
    })
}

/// Whether a call raised `error:undef`.
fn is_undef(outcome: &erlang_cnode_node::Outcome) -> bool {
    matches!(
        outcome,
        erlang_cnode_node::Outcome::Exception {
            class: erlang_cnode_node::Class::Error,
            reason: Term::Atom(reason),
            ..
        } if reason == "undef"
    )
}

/// An `undef` for `String` when the node has `Elixir.String`: says so.
/// Only for roles with full access (the look-up is a call of
/// `code:which/1` that no allow-list lists).
fn elixir_hint(error: SqlError, endpoint: &Endpoint, module: &str) -> SqlError {
    // Elixir aliases are capitalised; Erlang modules are not.
    let alias = module.starts_with(|c: char| c.is_ascii_uppercase());
    if !alias || module.starts_with("Elixir.") || !endpoint.privileged {
        return error;
    }
    let elixir = format!("Elixir.{module}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let found = backend::request(endpoint, |nodes, target| {
        nodes.call(
            target,
            "code",
            "which",
            vec![Term::atom(elixir.clone())],
            &mut waiter(),
            deadline,
        )
    });
    match found {
        Ok(erlang_cnode_node::Outcome::Return(Term::Atom(a))) if a == "non_existing" => error,
        Ok(erlang_cnode_node::Outcome::Return(_)) => error.hint(format!(
            "Elixir modules are named with their prefix in Erlang: the node has {elixir}, \
             so call erlang_call(node, '{elixir}', …)."
        )),
        _ => error,
    }
}

/// `erlang_try_call(node, module, function, args, timeout_ms)`: as
/// `erlang_call`, with an Erlang exception given back as
/// `{"error": {"class", "reason", "stack"}}` instead of raised, and a
/// result as `{"ok": result}`.
unsafe fn try_call(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let args = call_args(unsafe { jsonb_arg(fcinfo, 3, "args") }?)?;
    let request = Request::Call {
        module: &module,
        function: &function,
        arity: args.len(),
    };
    endpoint.check(&request, args.iter().any(holds_fun))?;
    let limit = endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 4) })?;
    let deadline = std::time::Instant::now() + limit;
    let outcome = backend::request(&endpoint, |nodes, target| {
        nodes.call(target, &module, &function, args, &mut waiter(), deadline)
    })
    .map_err(|e| e.naming_the_call(&request.describe(), limit, true))?;
    let node = endpoint.node.to_string();
    let tagged = match outcome {
        erlang_cnode_node::Outcome::Return(value) => terms::tagged("ok", value),
        erlang_cnode_node::Outcome::Exception {
            class,
            reason,
            stack,
        } => terms::tagged("error", error::exception_term(class, reason, stack)),
    };
    jsonb::datum_of(&tagged, &node)
}

/// `erlang_text(term)`.
unsafe fn term_text(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let term = unsafe { jsonb_arg(fcinfo, 0, "term") }?;
    Ok(terms::text(&term).into_datum().unwrap_or(Datum::from(0)))
}

/// `erlang_string(term)`.
unsafe fn term_string(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let term = unsafe { jsonb_arg(fcinfo, 0, "term") }?;
    Ok(terms::string(&term)?.into_datum().unwrap_or(Datum::from(0)))
}

/// `erlang_charlist(text)`: the text as a charlist (its code points).
unsafe fn term_charlist(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let text = unsafe { text_arg(fcinfo, 0, "text") }?;
    let chars = Term::List(text.chars().map(|c| Term::Int(c as i64)).collect());
    jsonb::datum_of(&chars, "")
}

/// `erlang_proplist(term)`.
unsafe fn term_proplist(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let term = unsafe { jsonb_arg(fcinfo, 0, "term") }?;
    jsonb::datum_of(&terms::proplist(&term)?, "")
}

/// `erlang_record(term, fields)`.
unsafe fn term_record(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let term = unsafe { jsonb_arg(fcinfo, 0, "term") }?;
    // SAFETY: argument 1 is text[].
    let fields = unsafe { pg_getarg::<Vec<Option<String>>>(fcinfo, 1) }
        .ok_or_else(|| SqlError::new(b"22004", "fields must not be NULL"))?;
    let fields: Vec<String> = fields
        .into_iter()
        .map(|f| f.ok_or_else(|| SqlError::new(b"22004", "a field name must not be NULL")))
        .collect::<SqlResult<_>>()?;
    jsonb::datum_of(&terms::record(&term, &fields)?, "")
}

/// `erlang_last_error()`: the Erlang exception this session raised last.
unsafe fn last_error(_fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    match error::last_exception() {
        Some(exception) => jsonb::datum_of(&exception, ""),
        None => {
            // SAFETY: returning SQL NULL from a V1 function.
            unsafe { (*_fcinfo).isnull = true };
            Ok(Datum::from(0))
        }
    }
}

/// `erlang_gen_call(node, server, request, timeout_ms)`.
unsafe fn gen_call(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let server = unsafe { text_arg(fcinfo, 1, "server") }?;
    atom_arg(&server, "server")?;
    targets::check_text_name(&server, "server")?;
    let request = unsafe { jsonb_arg(fcinfo, 2, "request") }?;
    endpoint.check(&Request::GenCall { name: &server }, holds_fun(&request))?;
    let limit = endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 3) })?;
    let what = format!("gen_server:call({server}, {})", request_shape(&request));
    gen_call_on(&endpoint, &Term::atom(server), &request, limit, &what)
}

/// `gen_server:call` of `server` (a name, or a pid of the node) within
/// `limit`; `what` names it in errors.
fn gen_call_on(
    endpoint: &Endpoint,
    server: &Term<'_>,
    request: &Term<'_>,
    limit: std::time::Duration,
    what: &str,
) -> SqlResult<Datum> {
    let deadline = std::time::Instant::now() + limit;
    let outcome = backend::request(endpoint, |nodes, target| {
        nodes.gen_call(target, server, request, &mut waiter(), deadline)
    })
    .map_err(|e| e.naming_the_call(what, limit, false))?;
    result(outcome, what, &endpoint.node.to_string())
}

/// A gen_server request as an error names it: its tag (`{get, …}`,
/// `stop`), or `…`.
fn request_shape(request: &Term<'_>) -> String {
    match request {
        Term::Atom(tag) => terms::text(&Term::Atom(tag.clone())),
        Term::Tuple(items) => match items.first() {
            Some(tag @ Term::Atom(_)) if items.len() > 1 => format!("{{{}, …}}", terms::text(tag)),
            Some(tag @ Term::Atom(_)) => format!("{{{}}}", terms::text(tag)),
            _ => "…".into(),
        },
        _ => "…".into(),
    }
}

/// `erlang_cast(node, module, function, args)`: true once sent.
unsafe fn cast(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let args = call_args(unsafe { jsonb_arg(fcinfo, 3, "args") }?)?;
    let request = Request::Call {
        module: &module,
        function: &function,
        arity: args.len(),
    };
    endpoint.check(&request, args.iter().any(holds_fun))?;
    let deadline = std::time::Instant::now() + endpoint.call_timeout(None)?;
    backend::request(&endpoint, |nodes, target| {
        nodes.cast(target, &module, &function, args, &mut waiter(), deadline)
    })?;
    Ok(Datum::from(true))
}

/// `erlang_send(node, name, message)`: true once sent.
unsafe fn send(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let name = unsafe { text_arg(fcinfo, 1, "name") }?;
    atom_arg(&name, "name")?;
    targets::check_text_name(&name, "name")?;
    let message = unsafe { jsonb_arg(fcinfo, 2, "message") }?;
    endpoint.check(&Request::Send { name: &name }, holds_fun(&message))?;
    let deadline = std::time::Instant::now() + endpoint.call_timeout(None)?;
    send_on(&endpoint, &Term::atom(name), &message, deadline)
}

/// Sends `message` to `to` (a name, or a pid of the node): true once sent.
fn send_on(
    endpoint: &Endpoint,
    to: &Term<'_>,
    message: &Term<'_>,
    deadline: std::time::Instant,
) -> SqlResult<Datum> {
    backend::request(endpoint, |nodes, target| {
        nodes.send(target, to, message, &mut waiter(), deadline)
    })?;
    Ok(Datum::from(true))
}

/// `erlang_send(node, target jsonb, message)`: true once sent (for a
/// target resolved on the node, once the node has sent it on).
unsafe fn send_to(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let target = targets::parse(unsafe { jsonb_arg(fcinfo, 1, "target") }?, &endpoint)?;
    let message = unsafe { jsonb_arg(fcinfo, 2, "message") }?;
    let limit = endpoint.call_timeout(None)?;
    let deadline = std::time::Instant::now() + limit;
    let to = match target {
        targets::ProcessTarget::Name(name) => {
            endpoint.check(&Request::Send { name: &name }, holds_fun(&message))?;
            Term::atom(name)
        }
        targets::ProcessTarget::Pid(pid) => pid,
        targets::ProcessTarget::Elsewhere(target) => {
            let (module, function, args) = targets::sender(target, message);
            let what = format!("{module}:{function}/2");
            let outcome = backend::request(&endpoint, |nodes, t| {
                nodes.call(t, &module, &function, args, &mut waiter(), deadline)
            })
            .map_err(|e| e.naming_the_call(&what, limit, true))?;
            result(outcome, &what, &endpoint.node.to_string())?;
            return Ok(Datum::from(true));
        }
    };
    send_on(&endpoint, &to, &message, deadline)
}

/// `erlang_gen_call(node, server jsonb, request, timeout_ms)`: a pid on
/// the node is called as a name is; `{global, …}`, `{via, …}` and other
/// nodes' processes by `gen_server:call/3` on the node.
unsafe fn gen_call_to(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let target = targets::parse(unsafe { jsonb_arg(fcinfo, 1, "server") }?, &endpoint)?;
    let request = unsafe { jsonb_arg(fcinfo, 2, "request") }?;
    let limit = endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 3) })?;
    let deadline = std::time::Instant::now() + limit;
    let server = match target {
        targets::ProcessTarget::Name(name) => {
            endpoint.check(&Request::GenCall { name: &name }, holds_fun(&request))?;
            Term::atom(name)
        }
        targets::ProcessTarget::Pid(pid) => pid,
        targets::ProcessTarget::Elsewhere(target) => {
            let what = format!(
                "gen_server:call({}, {})",
                terms::text(&target),
                request_shape(&request)
            );
            // The node's own timeout a little before ours, so that a slow
            // server ends as gen_server's exit {timeout, …}.
            let margin = (limit / 10).min(std::time::Duration::from_millis(100));
            let inner = limit
                .saturating_sub(margin)
                .max(std::time::Duration::from_millis(1));
            let args = vec![target, request, Term::Int(inner.as_millis() as i64)];
            let outcome = backend::request(&endpoint, |nodes, t| {
                nodes.call(t, "gen_server", "call", args, &mut waiter(), deadline)
            })
            .map_err(|e| e.naming_the_call(&what, limit, false))?;
            return result(outcome, &what, &endpoint.node.to_string());
        }
    };
    let what = format!(
        "gen_server:call({}, {})",
        terms::text(&server),
        request_shape(&request)
    );
    gen_call_on(&endpoint, &server, &request, limit, &what)
}

/// An optional `key` argument: NULL or a non-empty text.
unsafe fn key_arg(fcinfo: FunctionCallInfo, n: usize) -> SqlResult<Option<String>> {
    // SAFETY: argument n is text.
    match unsafe { pg_getarg::<String>(fcinfo, n) } {
        Some(key) if key.is_empty() => {
            Err(SqlError::invalid("key must not be empty; NULL for none"))
        }
        key => Ok(key),
    }
}

/// `erlang_send_on_commit(node, name, message, key, ack)`: the message's id.
unsafe fn send_on_commit(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let node = unsafe { text_arg(fcinfo, 0, "node") }?;
    let endpoint = server::resolve(&node)?;
    let name = unsafe { text_arg(fcinfo, 1, "name") }?;
    atom_arg(&name, "name")?;
    targets::check_text_name(&name, "name")?;
    unsafe { queue_send(fcinfo, node, endpoint, name, None) }
}

/// `erlang_send_on_commit(node, target jsonb, message, key, ack)`: a pid
/// of the node, `{global, Name}` or `{via, Module, Name}` (looked up when
/// the message goes), or a name.
unsafe fn send_on_commit_to(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let node = unsafe { text_arg(fcinfo, 0, "node") }?;
    let endpoint = server::resolve(&node)?;
    // SAFETY: argument 1 is jsonb.
    let Some(datum) = (unsafe { pg_getarg_datum(fcinfo, 1) }) else {
        return Err(SqlError::new(b"22004", "target must not be NULL"));
    };
    // SAFETY: a non-null jsonb datum.
    let term = unsafe { jsonb::term_of_datum(datum, "target") }?;
    match targets::parse(term, &endpoint)? {
        targets::ProcessTarget::Name(name) => unsafe {
            queue_send(fcinfo, node, endpoint, name, None)
        },
        targets::ProcessTarget::Pid(pid) => {
            let shown = terms::text(&pid);
            unsafe { queue_send(fcinfo, node, endpoint, shown, Some(datum)) }
        }
        targets::ProcessTarget::Elsewhere(target) => {
            if targets::registry(&target).is_none() {
                return Err(SqlError::invalid(format!(
                    "{} is not on node {}",
                    terms::text(&target),
                    endpoint.node
                ))
                .hint(
                    "A message queued at commit goes to the server's node: a pid of it, a name, \
                     {global, Name} or {via, Module, Name}.",
                ));
            }
            let shown = terms::text(&target);
            unsafe { queue_send(fcinfo, node, endpoint, shown, Some(datum)) }
        }
    }
}

/// Queues the message of an `erlang_send_on_commit` call (arguments 2 to
/// 4) for `target` (shown as `target`, with its term if not a name).
unsafe fn queue_send(
    fcinfo: FunctionCallInfo,
    node: String,
    endpoint: Endpoint,
    target: String,
    target_term: Option<Datum>,
) -> SqlResult<Datum> {
    let name = target;
    // SAFETY: argument 2 is jsonb.
    let Some(payload) = (unsafe { pg_getarg_datum(fcinfo, 2) }) else {
        return Err(SqlError::new(b"22004", "message must not be NULL"));
    };
    // SAFETY: a non-null jsonb datum. Read to refuse what is no term.
    let message = unsafe { jsonb::term_of_datum(payload, "message") }?;
    endpoint.check(&Request::Send { name: &name }, holds_fun(&message))?;
    let key = unsafe { key_arg(fcinfo, 3) }?;
    // SAFETY: argument 4 is boolean.
    let ack = unsafe { pg_getarg::<bool>(fcinfo, 4) }
        .ok_or_else(|| SqlError::new(b"22004", "ack must not be NULL"))?;
    let id = outbox::enqueue(outbox::Message {
        node: &node,
        kind: if ack {
            outbox::Kind::Acked
        } else {
            outbox::Kind::Bare
        },
        target: name,
        target_term,
        payload,
        function: None,
        key,
        owner: endpoint.role,
    })?;
    Ok(Datum::from(id))
}

/// `erlang_cast_on_commit(node, module, function, args, key)`: the id.
unsafe fn cast_on_commit(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let node = unsafe { text_arg(fcinfo, 0, "node") }?;
    let endpoint = server::resolve(&node)?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    // SAFETY: argument 3 is jsonb.
    let Some(payload) = (unsafe { pg_getarg_datum(fcinfo, 3) }) else {
        return Err(SqlError::new(b"22004", "args must not be NULL"));
    };
    // SAFETY: a non-null jsonb datum.
    let args = call_args(unsafe { jsonb::term_of_datum(payload, "args") }?)?;
    let request = Request::Call {
        module: &module,
        function: &function,
        arity: args.len(),
    };
    endpoint.check(&request, args.iter().any(holds_fun))?;
    let key = unsafe { key_arg(fcinfo, 4) }?;
    let id = outbox::enqueue(outbox::Message {
        node: &node,
        kind: outbox::Kind::Cast,
        target: format!("{module}:{function}"),
        target_term: None,
        payload,
        function: Some((module, function)),
        key,
        owner: endpoint.role,
    })?;
    Ok(Datum::from(id))
}

/// `erlang_outbox_retry(id)`.
unsafe fn outbox_retry(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    // SAFETY: argument 0 is bigint.
    let id = unsafe { pg_getarg::<i64>(fcinfo, 0) }
        .ok_or_else(|| SqlError::new(b"22004", "id must not be NULL"))?;
    let role = server::current_role();
    let retried = outbox::retry(id, role, server::full_access(role))?;
    Ok(Datum::from(retried))
}

/// `erlang_outbox_purge(older_than)`.
unsafe fn outbox_purge(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    // SAFETY: argument 0 is interval.
    let Some(older_than) = (unsafe { pg_getarg_datum(fcinfo, 0) }) else {
        return Err(SqlError::new(b"22004", "older_than must not be NULL"));
    };
    let role = server::current_role();
    let purged = outbox::purge(older_than, role, server::full_access(role))?;
    Ok(Datum::from(purged))
}

/// A call's arguments and what the allow-list sees of it: `module:function`
/// with these arguments, refused or not for the endpoint.
fn checked_call<'a>(
    endpoint: &Endpoint,
    module: &'a str,
    function: &'a str,
    args: &[Term<'_>],
) -> SqlResult<Request<'a>> {
    let request = Request::Call {
        module,
        function,
        arity: args.len(),
    };
    endpoint.check(&request, args.iter().any(holds_fun))?;
    Ok(request)
}

/// `erlang_call_async(node, module, function, args, timeout_ms)`: sends
/// the call now and returns its id for `erlang_await`; waits (interruptibly)
/// while `erlang_cnode.max_in_flight` calls are under way.
unsafe fn call_async(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let args = call_args(unsafe { jsonb_arg(fcinfo, 3, "args") }?)?;
    let what = checked_call(&endpoint, &module, &function, &args)?.describe();
    let deadline =
        std::time::Instant::now() + endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 4) })?;
    // Linked: if the session ends before it is awaited, the node ends it.
    let (call, generation) =
        backend::start_call(&endpoint, &module, &function, args, true, deadline)?;
    let id = requests::add(requests::Request {
        role: endpoint.role,
        node: endpoint.node.clone(),
        call,
        generation,
        deadline,
        what,
    });
    Ok(Datum::from(id))
}

/// `erlang_await(request)`: the outcome of a call `erlang_call_async` sent,
/// as `erlang_call` would give it; each id once.
unsafe fn await_request(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    // SAFETY: argument 0 is bigint.
    let id = unsafe { pg_getarg::<i64>(fcinfo, 0) }
        .ok_or_else(|| SqlError::new(b"22004", "request must not be NULL"))?;
    let request = requests::take(id, server::current_role())?;
    let outcome = backend::finish_call(
        request.role,
        &request.node,
        &request.call,
        request.generation,
        request.deadline,
    )?;
    result(outcome, &request.what, &request.node.to_string())
}

/// `erlang_call_many(node, module, function, args_list, timeout_ms)`, as a
/// `jsonb` array of the results in input order: every call is sent before
/// any is waited for (at most `erlang_cnode.max_in_flight` at once), all
/// within one timeout. The first failure, in input order, is raised once
/// the calls after it are given up on (killed on the node).
unsafe fn call_many(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let list = unsafe { jsonb_arg(fcinfo, 3, "args_list") }?;
    let not_a_list = || {
        SqlError::invalid("args_list must be a JSON array of argument arrays, one per call")
            .hint("For example '[[1], [2], [3]]'::jsonb for f(1), f(2), f(3).")
    };
    let calls = match list {
        Term::List(calls) => calls,
        _ => return Err(not_a_list()),
    };
    let mut arg_lists = Vec::with_capacity(calls.len());
    for call in calls {
        let Term::List(args) = call else {
            return Err(not_a_list());
        };
        checked_call(&endpoint, &module, &function, &args)?;
        arg_lists.push(args);
    }
    // How an error names the call, made only for the one that failed.
    let arities: Vec<usize> = arg_lists.iter().map(Vec::len).collect();
    let describe = |i: usize| {
        Request::Call {
            module: &module,
            function: &function,
            arity: arities[i],
        }
        .describe()
    };
    let deadline =
        std::time::Instant::now() + endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 4) })?;
    let node = endpoint.node.to_string();
    let (ids, generation) =
        backend::start_calls(&endpoint, &module, &function, arg_lists, deadline)?;
    let outcomes =
        backend::finish_in_order(endpoint.role, &endpoint.node, &ids, generation, deadline)?;
    let mut results = Vec::with_capacity(outcomes.len());
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(erlang_cnode_node::Outcome::Return(value)) => results.push(value),
            Ok(outcome) => return result(outcome, &describe(i), &node),
            Err(e) => return Err(SqlError::from(e)),
        }
    }
    jsonb::datum_of(&Term::List(results), &node)
}

/// One row of `erlang_multicall`, as a JSON object: `node`, and `result`
/// or `error` (`class`, `reason`, and `stack` or `message` where known).
fn multicall_row<'a>(node: &str, field: &str, value: Term<'a>) -> Term<'a> {
    Term::map(vec![
        (
            Term::binary(b"node".to_vec()),
            Term::binary(node.as_bytes().to_vec()),
        ),
        (Term::binary(field.as_bytes().to_vec()), value),
    ])
    .expect("distinct keys")
}

/// An `erpc`-style error: `{"class": …, "reason": …, …}`.
fn multicall_error<'a>(class: &str, reason: Term<'a>, extra: Option<(&str, Term<'a>)>) -> Term<'a> {
    let mut entries = vec![
        (
            Term::binary(b"class".to_vec()),
            Term::binary(class.as_bytes().to_vec()),
        ),
        (Term::binary(b"reason".to_vec()), reason),
    ];
    if let Some((key, value)) = extra {
        entries.push((Term::binary(key.as_bytes().to_vec()), value));
    }
    Term::map(entries).expect("distinct keys")
}

/// The row for a node that could not be called, or did not answer in time:
/// `{erpc, noconnection}` or `{erpc, timeout}`, as `erpc:multicall` gives,
/// with the message. A cancel, and errors in the arguments, are raised.
fn multicall_failure<'a>(node: &str, error: SqlError) -> SqlResult<Term<'a>> {
    let kind = match error.sqlstate() {
        _ if error.is_interrupted() => return Err(error),
        "57014" => "timeout",
        code if code.starts_with("08") || code == "F0000" || code == "28000" || code == "54000" => {
            "noconnection"
        }
        _ => return Err(error),
    };
    let reason = Term::Tuple(vec![Term::atom("erpc"), Term::atom(kind)]);
    let message = Term::binary(error.message().as_bytes().to_vec());
    Ok(multicall_row(
        node,
        "error",
        multicall_error("error", reason, Some(("message", message))),
    ))
}

/// `erlang_multicall(nodes, module, function, args, timeout_ms)`, as a
/// `jsonb` array of rows in the order of `nodes`: the call is sent to
/// every node before any is waited for, all within one timeout; a node
/// that fails gives a row with `error` instead of raising.
unsafe fn multicall(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    // SAFETY: argument 0 is text[].
    let nodes = unsafe { pg_getarg::<Vec<Option<String>>>(fcinfo, 0) }
        .ok_or_else(|| SqlError::new(b"22004", "nodes must not be NULL"))?;
    let (module, function) = unsafe { module_and_function(fcinfo) }?;
    let args = call_args(unsafe { jsonb_arg(fcinfo, 3, "args") }?)?;
    let timeout_ms = unsafe { timeout_arg(fcinfo, 4) };
    let mut endpoints = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = node.ok_or_else(|| SqlError::new(b"22004", "nodes must not hold NULL"))?;
        let endpoint = server::resolve(&node)?;
        checked_call(&endpoint, &module, &function, &args)?;
        endpoints.push((node, endpoint));
    }
    let timeout = endpoints
        .iter()
        .map(|(_, e)| e.call_timeout(timeout_ms))
        .collect::<SqlResult<Vec<_>>>()?
        .into_iter()
        .max()
        .unwrap_or_else(crate::guc::call_timeout);
    let deadline = std::time::Instant::now() + timeout;
    let mut sent = Vec::with_capacity(endpoints.len());
    for (_, endpoint) in &endpoints {
        sent.push(backend::start_call(
            endpoint,
            &module,
            &function,
            args.clone(),
            true,
            deadline,
        ));
    }
    let give_up = |sent: &[SqlResult<(erlang_cnode_node::CallId, u64)>]| {
        for ((_, endpoint), started) in endpoints.iter().zip(sent) {
            if let Ok((call, generation)) = started {
                backend::abandon_call(endpoint.role, &endpoint.node, call, *generation);
            }
        }
    };
    // Every node's reply is read as it comes, on all connections at once.
    let running: Vec<_> = endpoints
        .iter()
        .zip(&sent)
        .filter_map(|((_, endpoint), started)| {
            started
                .as_ref()
                .ok()
                .map(|(call, generation)| (&endpoint.node, call, *generation))
        })
        .collect();
    if let Err(e) = backend::wait_all(server::current_role(), &running, deadline) {
        give_up(&sent);
        return Err(e);
    }
    let mut rows = Vec::with_capacity(sent.len());
    for ((node, endpoint), started) in endpoints.iter().zip(&sent) {
        let outcome = match started {
            Ok((call, generation)) => {
                backend::finish_call(endpoint.role, &endpoint.node, call, *generation, deadline)
            }
            Err(e) => Err(e.clone()),
        };
        rows.push(match outcome {
            Ok(erlang_cnode_node::Outcome::Return(value)) => multicall_row(node, "result", value),
            Ok(erlang_cnode_node::Outcome::Exception {
                class,
                reason,
                stack,
            }) => multicall_row(
                node,
                "error",
                multicall_error(class.as_str(), reason, stack.map(|s| ("stack", s))),
            ),
            Err(error) => match multicall_failure(node, error) {
                Ok(row) => row,
                Err(error) => {
                    give_up(&sent);
                    return Err(error);
                }
            },
        });
    }
    jsonb::datum_of(&Term::List(rows), "(several)")
}

/// How much longer than the service's own timeout the reply may take: on
/// the node the call is stopped (and answers `timeout`) when it overruns;
/// this leaves it time to.
const SERVICE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// `erlang_service_call(node, service, function, args, timeout_ms)`: a typed
/// service function through the node's `ErlangCnode.Dispatcher`.
unsafe fn service_call(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let service = unsafe { text_arg(fcinfo, 1, "service") }?;
    let function = unsafe { text_arg(fcinfo, 2, "function") }?;
    // Sent as JSON text and decoded on the node without making atoms: no
    // argument from SQL can create one there.
    let args_text = unsafe { jsonb_text_arg(fcinfo, 3, "args") }?;
    if !args_text.starts_with('{') {
        return Err(
            SqlError::invalid("args must be a JSON object of named arguments")
                .hint("For example '{\"a\": 1, \"b\": 2}'::jsonb; '{}' for none."),
        );
    }
    // Services take no funs from roles with an allow-list: typed arguments
    // have no use for them, and `any` would pass one on. What cannot be
    // read as a term cannot be checked: refused, not let through.
    let funs = !endpoint.privileged && holds_fun(&jsonb::term_of(&args_text, "args")?);
    endpoint.check(
        &Request::Service {
            name: &service,
            function: &function,
        },
        funs,
    )?;
    let timeout = endpoint.call_timeout(unsafe { timeout_arg(fcinfo, 4) })?;
    let deadline = std::time::Instant::now() + timeout + SERVICE_GRACE;
    let call_args = vec![
        Term::binary(service.as_bytes()),
        Term::binary(function.as_bytes()),
        Term::binary(args_text.as_bytes()),
        Term::Int(timeout.as_millis().min(i64::MAX as u128) as i64),
    ];
    let node_text = endpoint.node.to_string();
    let outcome = backend::request(&endpoint, |nodes, target| {
        nodes.call(
            target,
            "Elixir.ErlangCnode.Dispatcher",
            "sql_call",
            call_args,
            &mut waiter(),
            deadline,
        )
    })?;
    let what = format!("{service}.{function}");
    match outcome {
        erlang_cnode_node::Outcome::Return(Term::Tuple(items)) => match items.as_slice() {
            [Term::Atom(ok), value] if ok == "ok" => jsonb::datum_of(value, &node_text),
            [Term::Atom(error), Term::Atom(kind), Term::Binary(message)] if error == "error" => {
                Err(service_error(
                    &what,
                    &node_text,
                    kind,
                    &String::from_utf8_lossy(message),
                ))
            }
            _ => Err(unexpected_service_reply(&node_text)),
        },
        erlang_cnode_node::Outcome::Return(_) => Err(unexpected_service_reply(&node_text)),
        // Its process stopped by a signal while the function ran in it.
        erlang_cnode_node::Outcome::Exception {
            class: Class::Exit,
            reason: Term::Tuple(signal),
            ..
        } if matches!(signal.as_slice(), [Term::Atom(s), _] if s == "signal") => {
            let (kind, message) = stopped(&signal[1]);
            Err(service_error(&what, &node_text, kind, &message))
        }
        erlang_cnode_node::Outcome::Exception {
            class,
            reason,
            stack,
        } => Err(error::exception(
            "ErlangCnode.Dispatcher.sql_call/4",
            &node_text,
            class,
            &reason,
            stack.as_ref(),
        )
        .hint("Is the erlang_cnode Elixir application running on the node?")),
    }
}

/// `erlang_service_catalog(node)`: the services and functions the node
/// offers (`ErlangCnode.Registry.sql_services/0`) as a `jsonb` array;
/// for roles with an allow-list, only those it allows.
unsafe fn service_catalog(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    let endpoint = unsafe { endpoint_arg(fcinfo) }?;
    let deadline = std::time::Instant::now() + endpoint.call_timeout(None)?;
    let (module, function) = ("Elixir.ErlangCnode.Registry", "sql_services");
    let outcome = backend::request(&endpoint, |nodes, target| {
        nodes.call(
            target,
            module,
            function,
            Vec::new(),
            &mut waiter(),
            deadline,
        )
    })?;
    let node = endpoint.node.to_string();
    let what = format!("{module}:{function}/0");
    let list = match outcome {
        erlang_cnode_node::Outcome::Return(Term::List(items)) => items,
        erlang_cnode_node::Outcome::Return(_) => return Err(unexpected_service_reply(&node)),
        erlang_cnode_node::Outcome::Exception {
            class,
            reason,
            stack,
        } => {
            return Err(
                error::exception(&what, &node, class, &reason, stack.as_ref())
                    .hint("Is the erlang_cnode Elixir application running on the node?"),
            )
        }
    };
    let field = |item: &Term<'_>, key: &str| -> Option<String> {
        let Term::Map(entries) = item else {
            return None;
        };
        entries.iter().find_map(|(k, v)| match (k, v) {
            (Term::Binary(k), Term::Binary(v)) if k.as_ref() == key.as_bytes() => {
                Some(String::from_utf8_lossy(v).into_owned())
            }
            _ => None,
        })
    };
    let allowed: Vec<Term<'_>> = list
        .into_iter()
        .filter(|item| {
            endpoint.privileged
                || endpoint.server.as_ref().is_some_and(|server| {
                    match (field(item, "service"), field(item, "function")) {
                        (Some(service), Some(function)) => {
                            server.allow.allows_service_function(&service, &function)
                        }
                        _ => false,
                    }
                })
        })
        .collect();
    jsonb::datum_of(&Term::List(allowed), &node)
}

/// The validator of the `erlang_cnode` foreign-data wrapper:
/// `(options text[], catalog oid)`.
unsafe fn fdw_validator(fcinfo: FunctionCallInfo) -> SqlResult<Datum> {
    // SAFETY: the arguments PostgreSQL passes to a validator.
    unsafe {
        let options = pg_getarg_datum(fcinfo, 0).unwrap_or(Datum::from(0usize));
        let catalog = pg_getarg::<pg_sys::Oid>(fcinfo, 1).unwrap_or(pg_sys::InvalidOid);
        let list = pg_sys::untransformRelOptions(options);
        server::validate(list, catalog)?;
    }
    Ok(Datum::from(0usize))
}

/// Why a service call's process was stopped by a signal, as the kind of
/// the dispatcher's answers: `timeout`, with its message, for its
/// dispatcher's stop past its timeout (`{erlang_cnode_timeout, Message}`);
/// `crashed` for anything else (a link, its own `exit/2`, `max_heap_size`).
fn stopped(why: &Term<'_>) -> (&'static str, String) {
    if let Term::Tuple(items) = why {
        if let [Term::Atom(tag), Term::Binary(message)] = items.as_slice() {
            if tag == "erlang_cnode_timeout" {
                return ("timeout", String::from_utf8_lossy(message).into_owned());
            }
        }
    }
    let why = erlang_cnode_codec::text::to_erlang_text(why, 1000);
    ("crashed", format!("its process was stopped: {why}"))
}

fn unexpected_service_reply(node: &str) -> SqlError {
    SqlError::new(
        b"08P01",
        format!("node {node} answered a service call with something else than {{ok, _}} or {{error, _, _}}"),
    )
}

/// The ERROR for a failed service call, by the dispatcher's kind.
fn service_error(what: &str, node: &str, kind: &str, message: &str) -> SqlError {
    match kind {
        "unknown_service" | "unknown_function" => SqlError::new(b"42883", message.to_owned())
            .hint("erlang_services(node) lists the services and functions a node offers."),
        "invalid_arguments" => SqlError::invalid(format!(
            "invalid arguments for {what} on node {node}: {message}"
        )),
        "invalid_result" => SqlError::new(
            b"ER005",
            format!("{what} on node {node} returned a value of the wrong type: {message}"),
        ),
        "crashed" => SqlError::new(b"ER004", format!("{what} on node {node} crashed"))
            .detail(message.to_owned()),
        "timeout" => SqlError::new(b"57014", format!("{what} on node {node}: {message}")),
        other => SqlError::new(
            b"ER004",
            format!("{what} on node {node} failed ({other}): {message}"),
        ),
    }
}

fn result(outcome: erlang_cnode_node::Outcome, what: &str, node: &str) -> SqlResult<Datum> {
    match outcome {
        erlang_cnode_node::Outcome::Return(value) => jsonb::datum_of(&value, node),
        erlang_cnode_node::Outcome::Exception {
            class,
            reason,
            stack,
        } => Err(error::exception(what, node, class, &reason, stack.as_ref())),
    }
}

fn timestamp(at: std::time::SystemTime) -> TimestampWithTimeZone {
    let since_epoch = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    pgrx::datum::to_timestamp(since_epoch)
}

/// One row per live connection of this backend made as the current role.
/// Never shows the cookie.
#[pg_extern(volatile, parallel_restricted)]
fn erlang_connections() -> TableIterator<
    'static,
    (
        name!(node, String),
        name!(local_node, String),
        name!(connected_since, TimestampWithTimeZone),
        name!(last_used, TimestampWithTimeZone),
        name!(calls, i64),
        name!(errors, i64),
    ),
> {
    if !server::full_access(server::current_role()) && !server::uses_any_server() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "permission denied: erlang_connections() is for members of erlang_cnode_user and \
             roles with USAGE on an erlang_cnode server"
        );
    }
    let rows: Vec<ConnectionInfo> = backend::connections();
    TableIterator::new(rows.into_iter().map(|c| {
        (
            c.node,
            c.local_node,
            timestamp(c.connected_since),
            timestamp(c.last_used),
            c.calls as i64,
            c.errors as i64,
        )
    }))
}
