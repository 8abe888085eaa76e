//! How a remote call ended: a value, or an exception of one of Erlang's
//! three classes, read from `erpc:execute_call/4`'s exit reason so that a
//! result, each class and a vanished process are told apart exactly.

use erlang_cnode_codec::{Reference, Term};

/// The class of an Erlang exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `error:Reason`
    Error,
    /// `exit:Reason`
    Exit,
    /// `throw:Value`
    Throw,
}

impl Class {
    /// The class as Erlang writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Error => "error",
            Class::Exit => "exit",
            Class::Throw => "throw",
        }
    }
}

/// How a remote call ended, when the node answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function returned this value.
    Return(Term<'static>),
    /// The function raised. For `error`, `stack` is the stack trace. A
    /// process killed by a signal reports `exit` with `{signal, Reason}`, as
    /// `erpc` does.
    Exception {
        /// Its class.
        class: Class,
        /// Its reason (the thrown value for `throw`).
        reason: Term<'static>,
        /// The stack trace of an `error`.
        stack: Option<Term<'static>>,
    },
}

/// Reads `erpc:execute_call/4`'s exit reason: `{Tag, return, V}`,
/// `{Tag, throw, V}`, `{Tag, exit, R}`, `{Tag, error, R, Stack}`; anything
/// else means the process died of a signal.
pub(crate) fn of_execute_call(reason: Term<'static>, tag: &Reference<'_>) -> Outcome {
    let tagged = |t: &Term<'_>| matches!(t, Term::Reference(r) if **r == *tag);
    let class = match &reason {
        Term::Tuple(items) => match items.as_slice() {
            [t, Term::Atom(kind), _] if tagged(t) => match &**kind {
                "return" => Some(None),
                "throw" => Some(Some(Class::Throw)),
                "exit" => Some(Some(Class::Exit)),
                _ => None,
            },
            [t, Term::Atom(kind), _, _] if tagged(t) && kind == "error" => Some(Some(Class::Error)),
            _ => None,
        },
        _ => None,
    };
    let Some(class) = class else {
        return signal(reason);
    };
    let Term::Tuple(items) = reason else {
        unreachable!("a tuple, matched above")
    };
    // The value is moved out, not copied: it can be a large result.
    let mut items = items.into_iter().skip(2);
    let value = items.next().expect("matched above");
    match class {
        None => Outcome::Return(value),
        // The stack trace is the fourth item, of `error` only.
        Some(class) => Outcome::Exception {
            class,
            reason: value,
            stack: items.next(),
        },
    }
}

/// A process that died of a signal (killed, or by a link), as `erpc`
/// reports it: `exit` with `{signal, Reason}`.
fn signal(reason: Term<'static>) -> Outcome {
    Outcome::Exception {
        class: Class::Exit,
        reason: Term::Tuple(vec![Term::atom("signal"), reason]),
        stack: None,
    }
}
