//! Every error the SQL functions raise, each with its own SQLSTATE, a
//! message that names the node, and the Erlang reason in DETAIL. Never the
//! cookie.
//!
//! | SQLSTATE | when |
//! |---|---|
//! | `22004` | a required argument is NULL |
//! | `22023` | a bad argument: node name, cookie, module, timeout, JSON that is no term |
//! | `08N01` | the node's host does not resolve |
//! | `08N02` | EPMD on the node's host does not answer |
//! | `08N03` | EPMD does not know the node |
//! | `08N04` | the node's distribution port refuses the connection |
//! | `08N05` | the node refused the handshake |
//! | `08N06` | the node rejected the cookie |
//! | `08N07` | the connection was lost (the node died or closed it) |
//! | `08P01` | the node broke the protocol (a malformed message) |
//! | `54000` | a message from the node was over `erlang_cnode.max_message_size`, or nested too deeply |
//! | `57014` | the call timed out (a cancel raises PostgreSQL's own `57014`) |
//! | `F0000` | no cookie configured and the cookie file is missing or unsafe |
//! | `ER001` | the Erlang function raised an `error` |
//! | `ER002` | … an `exit` (also a dead `gen_server`: `noproc`) |
//! | `ER003` | … a `throw` |
//! | `ER004` | a service function (`erlang_service_call`) crashed |
//! | `ER005` | a service function returned a value of the wrong type |
//! | `42883` | no such service or function on the node |

use std::ffi::{c_char, c_int, CString};

use erlang_cnode_codec::text::to_erlang_text;
use erlang_cnode_codec::Term;
use erlang_cnode_node::{Class, Error};

/// Longest Erlang reason shown in a message; DETAIL has more room.
const MESSAGE_REASON: usize = 200;
const DETAIL_REASON: usize = 16 * 1024;

/// An ERROR to raise: SQLSTATE, message, optional detail and hint.
#[derive(Debug, Clone)]
pub struct SqlError {
    code: &'static [u8; 5],
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    hide_statement: bool,
    interrupted: bool,
    /// Set for a request that ran out of time waiting for a reply (not
    /// for a connect): [`SqlError::naming_the_call`] says which.
    reply_timeout: bool,
}

/// Result of an SQL function body.
pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    /// An error with SQLSTATE `code`.
    pub fn new(code: &'static [u8; 5], message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            hide_statement: false,
            interrupted: false,
            reply_timeout: false,
        }
    }

    /// A timeout waiting for a reply, told again with the call that timed
    /// out and the limit it had; any other error as it is.
    /// `killed`: the call ran in a process of its own, killed now (not so
    /// for a `gen_server` called directly, which goes on with the request).
    pub fn naming_the_call(self, what: &str, limit: std::time::Duration, killed: bool) -> SqlError {
        if !self.reply_timeout {
            return self;
        }
        SqlError::new(
            b"57014",
            format!(
                "{what} got no reply within {} ms ({})",
                limit.as_millis(),
                self.message
            ),
        )
        .hint(format!(
            "Pass a larger timeout_ms, or raise the server's call_timeout or \
             erlang_cnode.call_timeout. A server that ignores requests it does not know \
             never replies: check the request's shape.{}",
            if killed {
                " The call's process was killed."
            } else {
                " The server may still be working on the request."
            }
        ))
    }

    /// Adds DETAIL.
    pub fn detail(mut self, detail: impl Into<String>) -> SqlError {
        self.detail = Some(detail.into());
        self
    }

    /// Adds HINT.
    pub fn hint(mut self, hint: impl Into<String>) -> SqlError {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps the statement out of the server log (it holds a cookie).
    pub fn hide_statement(mut self) -> SqlError {
        self.hide_statement = true;
        self
    }

    /// `22023 invalid_parameter_value`.
    pub fn invalid(message: impl Into<String>) -> SqlError {
        SqlError::new(b"22023", message)
    }

    /// The SQLSTATE, as five characters.
    pub fn sqlstate(&self) -> &str {
        std::str::from_utf8(self.code).expect("ASCII")
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a cancel or terminate stopped the request (PostgreSQL raises
    /// its own error for it).
    pub fn is_interrupted(&self) -> bool {
        self.interrupted
    }
}

impl From<Error> for SqlError {
    fn from(error: Error) -> SqlError {
        let message = error.to_string();
        match error {
            Error::InvalidNodeName { .. } => SqlError::invalid(message)
                .hint("Node names look like name@host, as erl -sname or -name gives them."),
            Error::UnknownHost { .. } => SqlError::new(b"08N01", message),
            Error::EpmdUnreachable { .. } => SqlError::new(b"08N02", message)
                .hint("Is any Erlang node running on that host? EPMD starts with the first one."),
            Error::NotRegistered { .. } => SqlError::new(b"08N03", message)
                .hint("Is the node running? `epmd -names` on its host lists the nodes it knows."),
            Error::ConnectFailed { .. } => SqlError::new(b"08N04", message),
            Error::Refused { .. } => SqlError::new(b"08N05", message),
            Error::AliveElsewhere { .. } => SqlError::new(b"08N05", message).hint(
                "Another host name for the same machine reaches the same node, which OTP \
                 refuses under a second name: name it as erlang_connections() lists it.",
            ),
            Error::OtherName { ref answered, .. } => {
                let hint = format!(
                    "Name the node as it names itself: {answered}. Another host name for the \
                     same machine reaches the same node, which OTP refuses under a second name."
                );
                SqlError::new(b"08N05", message).hint(hint)
            }
            Error::WrongCookie { .. } => SqlError::new(b"08N06", message).hint(
                "Give the node's cookie in the user mapping for its server (or to \
                 erlang_connect), or make the server OS user's ~/.erlang.cookie the node's.",
            ),
            Error::ConnectionLost { .. } => SqlError::new(b"08N07", message)
                .detail("A request that was under way may or may not have run; it is not re-sent."),
            Error::Protocol { .. } => SqlError::new(b"08P01", message),
            Error::Unencodable { .. } => SqlError::invalid(message)
                .hint("Nothing was sent. Terms may be nested at most 1,000 levels deep."),
            Error::TooDeep { .. } => SqlError::new(b"54000", message)
                .hint("The reply was dropped; the connection goes on."),
            Error::TooLarge { .. } => SqlError::new(b"54000", message)
                .hint("Raise erlang_cnode.max_message_size if such replies are expected."),
            Error::Timeout { during, .. } => SqlError {
                reply_timeout: during == "waiting for",
                ..SqlError::new(b"57014", message)
            },
            Error::Interrupted { .. } => SqlError {
                interrupted: true,
                ..SqlError::new(b"57014", message)
            },
            Error::CookieFile { .. } => SqlError::new(b"F0000", message).hint(
                "Call the node through a server whose user mapping holds its cookie, pass \
                 the cookie to erlang_connect, or give the server's OS user a \
                 ~/.erlang.cookie readable only by it.",
            ),
            _ => SqlError::new(b"XX000", message),
        }
    }
}

thread_local! {
    /// The Erlang exception this session raised as an ERROR last, with
    /// the role it was raised for (`erlang_last_error()` shows it only to
    /// that role).
    static LAST_EXCEPTION: std::cell::RefCell<Option<(u32, Term<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// An exception as `{"class": …, "reason": …, "stack": …}` (a map with
/// binary keys; `stack` only for `error`).
pub fn exception_term(
    class: Class,
    reason: Term<'static>,
    stack: Option<Term<'static>>,
) -> Term<'static> {
    let key = |k: &str| Term::Binary(k.as_bytes().to_vec().into());
    let mut entries = vec![
        (
            key("class"),
            Term::Binary(class.as_str().as_bytes().to_vec().into()),
        ),
        (key("reason"), reason),
    ];
    if let Some(stack) = stack {
        entries.push((key("stack"), stack));
    }
    Term::Map(entries)
}

/// The exception this session raised last for the current role (see
/// [`exception`]).
pub fn last_exception() -> Option<Term<'static>> {
    // SAFETY: reads the backend's current user id.
    let role = unsafe { pgrx::pg_sys::GetUserId() }.to_u32();
    LAST_EXCEPTION.with_borrow(|last| {
        last.as_ref()
            .filter(|(owner, _)| *owner == role)
            .map(|(_, exception)| exception.clone())
    })
}

/// Forgets the last exception (`DISCARD ALL`).
pub fn forget_last_exception() {
    LAST_EXCEPTION.set(None);
}

/// The ERROR for an Erlang exception raised by `what` (e.g. `lists:foo/2`)
/// on `node`: SQLSTATE by class, the reason in the message (shortened) and
/// in DETAIL (as `~p` prints it, up to 16 KB), with the stack trace for
/// `error`s. The whole exception stays reachable as `jsonb` through
/// `erlang_last_error()`.
pub fn exception(
    what: &str,
    node: &str,
    class: Class,
    reason: &Term<'_>,
    stack: Option<&Term<'_>>,
) -> SqlError {
    let code = match class {
        Class::Error => b"ER001",
        Class::Exit => b"ER002",
        Class::Throw => b"ER003",
    };
    let short = to_erlang_text(reason, MESSAGE_REASON);
    let detail = match stack {
        Some(stack) => to_erlang_text(
            &Term::Tuple(vec![reason.clone(), stack.clone()]),
            DETAIL_REASON,
        ),
        None => to_erlang_text(reason, DETAIL_REASON),
    };
    let whole = exception_term(
        class,
        reason.clone().into_owned(),
        stack.map(|s| s.clone().into_owned()),
    );
    // SAFETY: reads the backend's current user id.
    let role = unsafe { pgrx::pg_sys::GetUserId() }.to_u32();
    LAST_EXCEPTION.set(Some((role, whole)));
    SqlError::new(
        code,
        format!("{what} on node {node} raised {}: {short}", class.as_str()),
    )
    .detail(detail)
}

/// `MAKE_SQLSTATE`.
pub(crate) fn sqlstate(code: &[u8; 5]) -> c_int {
    code.iter()
        .enumerate()
        .map(|(i, &c)| (((c as c_int) - ('0' as c_int)) & 0x3f) << (6 * i))
        .sum()
}

fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).expect("no NUL left")
}

#[allow(improper_ctypes)]
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errhidestmt(hide: bool) -> c_int;
    fn ProcessInterrupts();
}

/// Raises `error` as a PostgreSQL ERROR.
///
/// # Safety
/// Must be called from the outermost frame of a function PostgreSQL called,
/// with nothing left to drop: the ERROR leaves by `longjmp`.
pub unsafe fn raise(error: SqlError) -> ! {
    if error.interrupted {
        drop(error);
        // The cancel or terminate that stopped the wait raises PostgreSQL's
        // own error ("canceling statement due to statement timeout", …).
        // SAFETY: as CHECK_FOR_INTERRUPTS, from a frame with nothing to drop.
        unsafe {
            if std::ptr::read_volatile(&raw const pgrx::pg_sys::InterruptPending) != 0 {
                ProcessInterrupts();
            }
            raise(SqlError::new(
                b"57014",
                "canceling the request to an Erlang node: interrupted",
            ))
        }
    }
    let code = sqlstate(error.code);
    let message = c_text(&error.message);
    let detail = error.detail.as_deref().map(c_text);
    let hint = error.hint.as_deref().map(c_text);
    let hide = error.hide_statement;
    drop(error);
    // SAFETY: the err* calls copy their arguments into ErrorContext before
    // the strings are dropped; errfinish then jumps to PostgreSQL's handler.
    unsafe {
        errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null());
        errcode(code);
        errmsg(c"%s".as_ptr(), message.as_ptr());
        if let Some(detail) = &detail {
            errdetail(c"%s".as_ptr(), detail.as_ptr());
        }
        if let Some(hint) = &hint {
            errhint(c"%s".as_ptr(), hint.as_ptr());
        }
        if hide {
            errhidestmt(true);
        }
        drop((message, detail, hint));
        // No source location: it would be this line, for every error.
        errfinish(std::ptr::null(), 0, std::ptr::null());
        unreachable!("errfinish returned from an ERROR")
    }
}
