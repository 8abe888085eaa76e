//! Conversions between [`Term`] and the `eetf::Term` type that `erl_dist`
//! sends and receives, so JSON reaches the distribution layer as a term tree
//! with no ETF bytes in between.

use std::borrow::Cow;
use std::collections::HashMap;

use eetf::{Atom, BigInteger, BitBinary, FixInteger, Float};

use crate::term::{Bitstring, Closure, ExternalFun, Pid, Port, Reference, Term};
use crate::{Error, Result};

/// How deep the eetf bridge goes. `eetf` itself encodes, decodes and drops
/// recursively, so this bridge is recursive too and keeps well inside small
/// thread stacks (BEAM dirty schedulers, test threads) in debug builds.
pub const EETF_MAX_DEPTH: usize = 200;

/// An `eetf::Term` as a [`Term`], borrowing its strings and bytes. Nesting
/// deeper than [`EETF_MAX_DEPTH`] is an error.
pub fn from_eetf(term: &eetf::Term) -> Result<Term<'_>> {
    from(term, 0, EETF_MAX_DEPTH)
}

/// A [`Term`] as an `eetf::Term`. Map entry order is not kept (eetf stores
/// maps in a `HashMap`); everything else is. Nesting deeper than
/// [`EETF_MAX_DEPTH`] is an error.
pub fn to_eetf(term: &Term<'_>) -> Result<eetf::Term> {
    to(term, 0, EETF_MAX_DEPTH)
}

fn deeper(depth: usize, max: usize) -> Result<usize> {
    if depth >= max {
        return Err(Error::TooDeep { limit: max });
    }
    Ok(depth + 1)
}

fn from_pid(pid: &eetf::Pid) -> Pid<'_> {
    Pid {
        node: Cow::Borrowed(&pid.node.name),
        id: pid.id,
        serial: pid.serial,
        creation: pid.creation,
    }
}

fn from_all(items: &[eetf::Term], depth: usize, max: usize) -> Result<Vec<Term<'_>>> {
    items.iter().map(|t| from(t, depth, max)).collect()
}

fn from(term: &eetf::Term, depth: usize, max: usize) -> Result<Term<'_>> {
    let all = |items, depth| from_all(items, depth, max);
    Ok(match term {
        eetf::Term::Atom(a) => Term::Atom(Cow::Borrowed(&a.name)),
        eetf::Term::FixInteger(i) => Term::Int(i64::from(i.value)),
        eetf::Term::BigInteger(b) => Term::from_bigint(b.value.clone()),
        eetf::Term::Float(f) if f.value.is_finite() => Term::Float(f.value),
        eetf::Term::Float(_) => return Err(Error::NonFiniteFloat),
        eetf::Term::Pid(p) => Term::Pid(Box::new(from_pid(p))),
        eetf::Term::Port(p) => Term::Port(Box::new(Port {
            node: Cow::Borrowed(&p.node.name),
            id: p.id,
            creation: p.creation,
        })),
        eetf::Term::Reference(r) => {
            if r.id.is_empty() || r.id.len() > crate::etf::MAX_REFERENCE_WORDS {
                return Err(Error::Unsupported {
                    what: "reference must have 1 to 5 id words",
                });
            }
            Term::Reference(Box::new(Reference {
                node: Cow::Borrowed(&r.node.name),
                creation: r.creation,
                id: r.id.clone(),
            }))
        }
        eetf::Term::ExternalFun(f) => Term::ExternalFun(Box::new(ExternalFun {
            module: Cow::Borrowed(&f.module.name),
            function: Cow::Borrowed(&f.function.name),
            arity: f.arity,
        })),
        eetf::Term::InternalFun(fun) => match fun.as_ref() {
            eetf::InternalFun::New {
                module,
                arity,
                pid,
                free_vars,
                index,
                uniq,
                old_index,
                old_uniq,
            } => {
                let depth = deeper(depth, max)?;
                Term::Closure(Box::new(Closure {
                    module: Cow::Borrowed(&module.name),
                    arity: *arity,
                    uniq: *uniq,
                    index: *index,
                    old_index: i64::from(*old_index),
                    old_uniq: i64::from(*old_uniq),
                    pid: from_pid(pid),
                    free_vars: all(free_vars, depth)?,
                }))
            }
            eetf::InternalFun::Old { .. } => {
                return Err(Error::Unsupported {
                    what: "pre-OTP 23 FUN_EXT closure",
                })
            }
        },
        eetf::Term::Binary(b) => Term::Binary(Cow::Borrowed(&b.bytes)),
        eetf::Term::BitBinary(b) => match (b.bytes.split_last(), b.tail_bits_size) {
            (None, _) => Term::Binary(Cow::Borrowed(&[])),
            (Some(_), 0 | 8) => Term::Binary(Cow::Borrowed(&b.bytes)),
            (Some((last, rest)), tail_bits @ 1..=7) => {
                // eetf keeps the used bits of the last byte right-aligned.
                let mut bytes = rest.to_vec();
                bytes.push(last << (8 - tail_bits));
                Term::Bitstring(Bitstring {
                    bytes: Cow::Owned(bytes),
                    tail_bits,
                })
            }
            _ => {
                return Err(Error::Unsupported {
                    what: "bitstring with more than 8 tail bits",
                })
            }
        },
        eetf::Term::ByteList(l) => {
            Term::List(l.bytes.iter().map(|&b| Term::Int(i64::from(b))).collect())
        }
        eetf::Term::List(l) if l.elements.is_empty() => Term::List(Vec::new()),
        eetf::Term::List(l) => Term::List(all(&l.elements, deeper(depth, max)?)?),
        eetf::Term::ImproperList(l) => {
            let depth = deeper(depth, max)?;
            let mut items = all(&l.elements, depth)?;
            match from(&l.last, depth, max)? {
                Term::List(rest) => {
                    items.extend(rest);
                    Term::List(items)
                }
                Term::ImproperList(rest, tail) => {
                    items.extend(rest);
                    Term::ImproperList(items, tail)
                }
                tail if items.is_empty() => tail,
                tail => Term::ImproperList(items, Box::new(tail)),
            }
        }
        eetf::Term::Tuple(t) => Term::Tuple(all(&t.elements, deeper(depth, max)?)?),
        eetf::Term::Map(m) => {
            let depth = deeper(depth, max)?;
            let entries = m
                .map
                .iter()
                .map(|(k, v)| Ok((from(k, depth, max)?, from(v, depth, max)?)))
                .collect::<Result<Vec<_>>>()?;
            Term::map(entries)?
        }
    })
}

fn atom(name: &str) -> Atom {
    Atom::from(name)
}

fn to_pid(pid: &Pid<'_>) -> eetf::Pid {
    eetf::Pid {
        node: atom(&pid.node),
        id: pid.id,
        serial: pid.serial,
        creation: pid.creation,
    }
}

fn to(term: &Term<'_>, depth: usize, max: usize) -> Result<eetf::Term> {
    let all = |items: &[Term<'_>], depth| {
        items
            .iter()
            .map(|t| to(t, depth, max))
            .collect::<Result<Vec<_>>>()
    };
    Ok(match term {
        Term::Atom(name) => eetf::Term::Atom(atom(name)),
        Term::Int(i) => match i32::try_from(*i) {
            Ok(small) => eetf::Term::FixInteger(FixInteger { value: small }),
            Err(_) => eetf::Term::BigInteger(BigInteger { value: (*i).into() }),
        },
        Term::BigInt(b) => eetf::Term::BigInteger(BigInteger { value: b.clone() }),
        Term::Float(f) => eetf::Term::Float(Float { value: *f }),
        Term::Binary(b) => eetf::Term::Binary(eetf::Binary { bytes: b.to_vec() }),
        Term::Bitstring(Bitstring { bytes, tail_bits }) => {
            let mut bytes = bytes.to_vec();
            if let Some(last) = bytes.last_mut() {
                *last >>= 8 - tail_bits;
            }
            eetf::Term::BitBinary(BitBinary {
                bytes,
                tail_bits_size: *tail_bits,
            })
        }
        Term::List(items) if items.is_empty() => eetf::Term::List(eetf::List::nil()),
        Term::List(items) => eetf::Term::List(eetf::List {
            elements: all(items, deeper(depth, max)?)?,
        }),
        Term::ImproperList(items, tail) => {
            let depth = deeper(depth, max)?;
            eetf::Term::ImproperList(eetf::ImproperList {
                elements: all(items, depth)?,
                last: Box::new(to(tail, depth, max)?),
            })
        }
        Term::Tuple(items) => eetf::Term::Tuple(eetf::Tuple {
            elements: all(items, deeper(depth, max)?)?,
        }),
        Term::Map(entries) => {
            let depth = deeper(depth, max)?;
            let map = entries
                .iter()
                .map(|(k, v)| Ok((to(k, depth, max)?, to(v, depth, max)?)))
                .collect::<Result<HashMap<_, _>>>()?;
            eetf::Term::Map(eetf::Map { map })
        }
        Term::Pid(p) => eetf::Term::Pid(to_pid(p)),
        Term::Port(p) => eetf::Term::Port(eetf::Port {
            node: atom(&p.node),
            id: p.id,
            creation: p.creation,
        }),
        Term::Reference(r) => eetf::Term::Reference(Box::new(eetf::Reference {
            node: atom(&r.node),
            id: r.id.clone(),
            creation: r.creation,
        })),
        Term::ExternalFun(f) => eetf::Term::ExternalFun(Box::new(eetf::ExternalFun {
            module: atom(&f.module),
            function: atom(&f.function),
            arity: f.arity,
        })),
        Term::Closure(c) => {
            let small = |v: i64| {
                i32::try_from(v).map_err(|_| Error::Unsupported {
                    what: "closure old_index/old_uniq beyond 32 bits",
                })
            };
            eetf::Term::InternalFun(Box::new(eetf::InternalFun::New {
                module: atom(&c.module),
                arity: c.arity,
                pid: to_pid(&c.pid),
                free_vars: all(&c.free_vars, deeper(depth, max)?)?,
                index: c.index,
                uniq: c.uniq,
                old_index: small(c.old_index)?,
                old_uniq: small(c.old_uniq)?,
            }))
        }
    })
}
