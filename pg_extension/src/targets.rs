//! Any process as a target of `erlang_send` and `erlang_gen_call`: a
//! registered name, a pid, `{global, Name}`, `{via, Module, Name}` or
//! `{Name, Node}`, given as `jsonb`. What the connection can address
//! itself (a name or a pid on the node) goes straight there; the others
//! are resolved on the node, by the function OTP has for them.

use erlang_cnode_codec::Term;

use crate::error::{SqlError, SqlResult};
use crate::server::Endpoint;

/// Where a message or request goes.
#[derive(Debug)]
pub enum ProcessTarget {
    /// A registered name on the node.
    Name(String),
    /// A pid on the node itself.
    Pid(Term<'static>),
    /// Anything else, resolved on the node: the term as OTP takes it.
    Elsewhere(Term<'static>),
}

fn not_a_target(why: &str) -> SqlError {
    SqlError::invalid(format!("not a process target: {why}")).hint(
        "A target is a registered name ({\"$atom\": \"name\"}), a pid ({\"$pid\": …}), \
         {\"$tuple\": [{\"$atom\": \"global\"}, Name]}, \
         {\"$tuple\": [{\"$atom\": \"via\"}, {\"$atom\": \"Module\"}, Name]} or \
         {\"$tuple\": [{\"$atom\": \"name\"}, {\"$atom\": \"node@host\"}]}.",
    )
}

/// Reads a `jsonb` target for `endpoint`'s node. Roles without full
/// access may only name a registered process (their allow-list speaks of
/// names).
pub fn parse(term: Term<'static>, endpoint: &Endpoint) -> SqlResult<ProcessTarget> {
    let node = endpoint.node.to_string();
    let target = match term {
        Term::Atom(name) => ProcessTarget::Name(name.into_owned()),
        Term::Pid(pid) if pid.node == node => ProcessTarget::Pid(Term::Pid(pid)),
        Term::Pid(pid) => ProcessTarget::Elsewhere(Term::Pid(pid)),
        tuple @ Term::Tuple(_) if registry(&tuple).is_some() => ProcessTarget::Elsewhere(tuple),
        Term::Tuple(items) => match items.as_slice() {
            [Term::Atom(name), Term::Atom(at)] if *at == node => {
                ProcessTarget::Name(name.to_string())
            }
            [Term::Atom(_), Term::Atom(_)] => ProcessTarget::Elsewhere(Term::Tuple(items)),
            _ => return Err(not_a_target("a tuple of another shape")),
        },
        _ => return Err(not_a_target("neither a name, a pid nor a tuple")),
    };
    if !matches!(target, ProcessTarget::Name(_)) && !endpoint.privileged {
        return Err(SqlError::new(
            b"42501",
            "permission denied to address a pid, a global or via name, or another node",
        )
        .hint("Only members of erlang_cnode_user do; others name a registered process."));
    }
    Ok(target)
}

/// Refuses a name given as text that is plainly a JSON target, which would
/// otherwise become an atom of that text on the node.
pub fn check_text_name(name: &str, what: &str) -> SqlResult<()> {
    if name.starts_with(['{', '[', '"', '<']) {
        return Err(SqlError::invalid(format!(
            "{what} {name} is not a registered name"
        ))
        .hint(format!(
            "To address a pid, {{global, Name}} or {{via, Module, Name}}, pass the target as jsonb: \
             '{{\"$pid\": …}}'::jsonb as {what}."
        )));
    }
    Ok(())
}

/// A name in a registry, `{global, Name}` or `{via, Module, Name}`, as the
/// registry's module and the name in it.
pub fn registry(target: &Term<'_>) -> Option<(String, Term<'static>)> {
    let Term::Tuple(items) = target else {
        return None;
    };
    match items.as_slice() {
        [Term::Atom(tag), name] if tag == "global" => {
            Some(("global".into(), name.clone().into_owned()))
        }
        [Term::Atom(tag), Term::Atom(module), name] if tag == "via" => {
            Some((module.to_string(), name.clone().into_owned()))
        }
        _ => None,
    }
}

/// The function that sends `message` to `target` on the node (module,
/// function, arguments): `global:send/2`, `Module:send/2` for `via`, else
/// `erlang:send/2`.
pub fn sender(
    target: Term<'static>,
    message: Term<'static>,
) -> (String, String, Vec<Term<'static>>) {
    match registry(&target) {
        Some((module, name)) => (module, "send".into(), vec![name, message]),
        None => ("erlang".into(), "send".into(), vec![target, message]),
    }
}
