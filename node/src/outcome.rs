//! How a remote call ended: a value, or an exception of one of Erlang's
//! three classes, read from `erpc:execute_call/4`'s exit reason so that a
//! result, each class and a vanished process are told apart exactly.

use erlang_cnode_codec::Term;

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
pub(crate) fn of_execute_call(reason: Term<'static>, tag: &Term<'static>) -> Outcome {
    if let Term::Tuple(items) = &reason {
        match items.as_slice() {
            [t, Term::Atom(kind), value] if t == tag && kind == "return" => {
                return Outcome::Return(value.clone())
            }
            [t, Term::Atom(kind), value] if t == tag && kind == "throw" => {
                return Outcome::Exception {
                    class: Class::Throw,
                    reason: value.clone(),
                    stack: None,
                };
            }
            [t, Term::Atom(kind), value] if t == tag && kind == "exit" => {
                return Outcome::Exception {
                    class: Class::Exit,
                    reason: value.clone(),
                    stack: None,
                };
            }
            [t, Term::Atom(kind), value, stack] if t == tag && kind == "error" => {
                return Outcome::Exception {
                    class: Class::Error,
                    reason: value.clone(),
                    stack: Some(stack.clone()),
                };
            }
            _ => {}
        }
    }
    Outcome::Exception {
        class: Class::Exit,
        reason: Term::Tuple(vec![Term::atom("signal"), reason]),
        stack: None,
    }
}
