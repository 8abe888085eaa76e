//! The tagged JSON forms (`{"$atom": "ok"}` and friends) and how their
//! payloads become terms. A one-key object whose key is one of these names is
//! a tagged form; every other object is a map with binary keys.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::etf::{MAX_ATOM_CHARS, MAX_REFERENCE_WORDS};
use crate::term::{Bitstring, Closure, ExternalFun, Pid, Port, Reference, Term};
use crate::{Error, Result};

/// `{"$atom": "name"}`
pub const ATOM: &str = "$atom";
/// `{"$tuple": [elements…]}`
pub const TUPLE: &str = "$tuple";
/// `{"$map": [[key, value]…]}`
pub const MAP: &str = "$map";
/// `{"$binary": "base64"}`
pub const BINARY: &str = "$binary";
/// `{"$bitstring": {"base64": "…", "bits": n}}`
pub const BITSTRING: &str = "$bitstring";
/// `[e1, …, {"$tail": tail}]`, an improper list
pub const TAIL: &str = "$tail";
/// `{"$pid": {"node", "id", "serial", "creation"}}`
pub const PID: &str = "$pid";
/// `{"$port": {"node", "id", "creation"}}`
pub const PORT: &str = "$port";
/// `{"$reference": {"node", "creation", "id": [words…]}}`
pub const REFERENCE: &str = "$reference";
/// `{"$fun": {"module", "function", "arity"}}`
pub const FUN: &str = "$fun";
/// `{"$closure": {"module", "arity", "uniq", "index", "old_index", "old_uniq", "pid", "free_vars"}}`
pub const CLOSURE: &str = "$closure";

/// Every tag name.
pub const ALL: [&str; 11] = [
    ATOM, TUPLE, MAP, BINARY, BITSTRING, TAIL, PID, PORT, REFERENCE, FUN, CLOSURE,
];

/// Whether `key`, as the only key of an object, makes it a tagged form.
pub fn is_tag(key: &str) -> bool {
    key.starts_with('$') && ALL.contains(&key)
}

/// What a JSON value stands for: a term, or the tail marker that may only
/// close an array.
pub(crate) enum Parsed<'a> {
    Term(Term<'a>),
    Tail(Term<'a>),
}

/// The term depth of a tagged form whose payload has term depth `payload`:
/// the payload's own levels that are not levels of the term are taken off.
pub(crate) fn depth_of(tag: &str, payload: usize) -> usize {
    match tag {
        // The payload array is the tuple's own level.
        TUPLE => payload.max(1),
        // `[[k, v], …]` and `{…, "free_vars": […]}` each add one level.
        MAP | CLOSURE => payload.saturating_sub(1).max(1),
        TAIL => payload,
        _ => 0,
    }
}

/// Turns the payload of a tagged form into the term it stands for.
pub(crate) fn interpret<'a>(tag: &str, payload: Term<'a>) -> Result<Parsed<'a>> {
    let term = match tag {
        ATOM => Term::Atom(atom_name(payload, ATOM)?),
        TUPLE => Term::Tuple(list(payload, TUPLE, "expected an array of elements")?),
        MAP => map(payload)?,
        BINARY => Term::Binary(Cow::Owned(base64(payload, BINARY)?)),
        BITSTRING => bitstring(payload)?,
        TAIL => {
            if matches!(payload, Term::List(_) | Term::ImproperList(..)) {
                return Err(bad(TAIL, "the tail of an improper list must not be a list"));
            }
            return Ok(Parsed::Tail(payload));
        }
        PID => Term::Pid(Box::new(pid_fields(payload, PID)?)),
        PORT => {
            let [node, id, creation] = fields(payload, PORT, ["node", "id", "creation"])?;
            Term::Port(Box::new(Port {
                node: node_name(node, PORT)?,
                id: u64_of(&id, PORT)?,
                creation: uint(&creation, PORT)?,
            }))
        }
        REFERENCE => {
            let [node, creation, id] = fields(payload, REFERENCE, ["node", "creation", "id"])?;
            let words = list(id, REFERENCE, "id must be an array of integers")?;
            if words.is_empty() || words.len() > MAX_REFERENCE_WORDS {
                return Err(bad(REFERENCE, "id must have 1 to 5 words"));
            }
            let id = words
                .iter()
                .map(|w| uint(w, REFERENCE))
                .collect::<Result<_>>()?;
            Term::Reference(Box::new(Reference {
                node: node_name(node, REFERENCE)?,
                creation: uint(&creation, REFERENCE)?,
                id,
            }))
        }
        FUN => {
            let [module, function, arity] = fields(payload, FUN, ["module", "function", "arity"])?;
            Term::ExternalFun(Box::new(ExternalFun {
                module: atom_name(module, FUN)?,
                function: atom_name(function, FUN)?,
                arity: uint(&arity, FUN)?,
            }))
        }
        CLOSURE => closure(payload)?,
        _ => unreachable!("interpret is only called for tag names"),
    };
    Ok(Parsed::Term(term))
}

fn bad(tag: &'static str, problem: &'static str) -> Error {
    Error::BadTag { tag, problem }
}

/// The text of a JSON string payload.
fn text<'a>(term: Term<'a>, tag: &'static str) -> Result<Cow<'a, str>> {
    let not_text = || bad(tag, "expected a string");
    match term {
        Term::Binary(Cow::Borrowed(b)) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| not_text()),
        Term::Binary(Cow::Owned(b)) => String::from_utf8(b).map(Cow::Owned).map_err(|_| not_text()),
        _ => Err(not_text()),
    }
}

/// A node name of a pid, port or reference: an atom name, not empty (no
/// node has that name, and Erlang would not read it back). Any other name
/// a node may send, even one holding NUL, comes back as it went.
fn node_name<'a>(term: Term<'a>, tag: &'static str) -> Result<Cow<'a, str>> {
    let name = atom_name(term, tag)?;
    if name.is_empty() {
        return Err(bad(tag, "node must not be empty"));
    }
    Ok(name)
}

fn atom_name<'a>(term: Term<'a>, tag: &'static str) -> Result<Cow<'a, str>> {
    let name = text(term, tag)?;
    if name.len() > MAX_ATOM_CHARS && name.chars().count() > MAX_ATOM_CHARS {
        return Err(Error::AtomTooLong);
    }
    Ok(name)
}

fn base64(term: Term<'_>, tag: &'static str) -> Result<Vec<u8>> {
    BASE64
        .decode(text(term, tag)?.as_bytes())
        .map_err(|_| bad(tag, "expected a base64 string"))
}

fn list<'a>(term: Term<'a>, tag: &'static str, problem: &'static str) -> Result<Vec<Term<'a>>> {
    match term {
        Term::List(items) => Ok(items),
        _ => Err(bad(tag, problem)),
    }
}

fn uint<T: TryFrom<i64>>(term: &Term<'_>, tag: &'static str) -> Result<T> {
    match term {
        Term::Int(i) if *i >= 0 => {
            T::try_from(*i).map_err(|_| bad(tag, "integer field out of range"))
        }
        _ => Err(bad(tag, "expected a non-negative integer field")),
    }
}

fn u64_of(term: &Term<'_>, tag: &'static str) -> Result<u64> {
    match term {
        Term::BigInt(b) => u64::try_from(b).map_err(|_| bad(tag, "integer field out of range")),
        _ => uint(term, tag),
    }
}

fn int(term: &Term<'_>, tag: &'static str) -> Result<i64> {
    match term {
        Term::Int(i) => Ok(*i),
        _ => Err(bad(tag, "expected an integer field")),
    }
}

/// The named fields of an object payload, in the order asked for; any
/// missing or extra field is an error.
fn fields<'a, const N: usize>(
    payload: Term<'a>,
    tag: &'static str,
    names: [&str; N],
) -> Result<[Term<'a>; N]> {
    let Term::Map(entries) = payload else {
        return Err(bad(tag, "expected an object"));
    };
    if entries.len() != N {
        return Err(bad(tag, "wrong set of fields"));
    }
    let mut slots: [Option<Term<'a>>; N] = std::array::from_fn(|_| None);
    for (key, value) in entries {
        let Term::Binary(key) = key else {
            return Err(bad(tag, "wrong set of fields"));
        };
        let slot = names
            .iter()
            .position(|n| n.as_bytes() == key.as_ref())
            .ok_or(bad(tag, "wrong set of fields"))?;
        slots[slot] = Some(value);
    }
    // N distinct known keys filled N slots, so none is empty.
    Ok(slots.map(|s| s.expect("every field present")))
}

fn map(payload: Term<'_>) -> Result<Term<'_>> {
    let pairs = list(payload, MAP, "expected an array of [key, value] pairs")?;
    let entries = pairs
        .into_iter()
        .map(|pair| match pair {
            Term::List(kv) if kv.len() == 2 => {
                let mut kv = kv.into_iter();
                Ok((kv.next().expect("two items"), kv.next().expect("two items")))
            }
            _ => Err(bad(MAP, "expected an array of [key, value] pairs")),
        })
        .collect::<Result<Vec<_>>>()?;
    Term::map(entries)
}

fn bitstring(payload: Term<'_>) -> Result<Term<'static>> {
    let [data, bits] = fields(payload, BITSTRING, ["base64", "bits"])?;
    let bytes = base64(data, BITSTRING)?;
    let bits: u64 = uint(&bits, BITSTRING)?;
    if bits.div_ceil(8) != bytes.len() as u64 {
        return Err(bad(BITSTRING, "bits does not match the number of bytes"));
    }
    let tail_bits = (bits % 8) as u8;
    if tail_bits == 0 {
        return Ok(Term::Binary(Cow::Owned(bytes)));
    }
    // Bits past the size would be dropped: input that would not come back
    // as it went is refused.
    if bytes
        .last()
        .is_some_and(|last| last & !(0xffu8 << (8 - tail_bits)) != 0)
    {
        return Err(bad(
            BITSTRING,
            "the bits past the size in the last byte must be zero",
        ));
    }
    Ok(Term::Bitstring(Bitstring {
        bytes: Cow::Owned(bytes),
        tail_bits,
    }))
}

fn pid_fields<'a>(payload: Term<'a>, tag: &'static str) -> Result<Pid<'a>> {
    let [node, id, serial, creation] = fields(payload, tag, ["node", "id", "serial", "creation"])?;
    Ok(Pid {
        node: node_name(node, tag)?,
        id: uint(&id, tag)?,
        serial: uint(&serial, tag)?,
        creation: uint(&creation, tag)?,
    })
}

fn closure(payload: Term<'_>) -> Result<Term<'_>> {
    let [module, arity, uniq, index, old_index, old_uniq, pid, free_vars] = fields(
        payload,
        CLOSURE,
        [
            "module",
            "arity",
            "uniq",
            "index",
            "old_index",
            "old_uniq",
            "pid",
            "free_vars",
        ],
    )?;
    let uniq_text = text(uniq, CLOSURE)?;
    let uniq = parse_hex16(&uniq_text).ok_or(bad(CLOSURE, "uniq must be 32 hex digits"))?;
    let Term::Pid(pid) = pid else {
        return Err(bad(CLOSURE, "pid must be a $pid"));
    };
    let (old_index, old_uniq) = (int(&old_index, CLOSURE)?, int(&old_uniq, CLOSURE)?);
    if i32::try_from(old_index).is_err() || i32::try_from(old_uniq).is_err() {
        return Err(bad(CLOSURE, "old_index and old_uniq must fit in 32 bits"));
    }
    Ok(Term::Closure(Box::new(Closure {
        module: atom_name(module, CLOSURE)?,
        arity: uint(&arity, CLOSURE)?,
        uniq,
        index: uint(&index, CLOSURE)?,
        old_index,
        old_uniq,
        pid: *pid,
        free_vars: list(free_vars, CLOSURE, "free_vars must be an array")?,
    })))
}

fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
