//! The in-memory term tree shared by every conversion in this crate.
//!
//! The tree borrows from its input where it can (`Cow`) and is canonical:
//! integers that fit in `i64` are always [`Term::Int`], a bitstring never has
//! a whole number of bytes, an improper list's tail is never a list, floats
//! are always finite, and map keys are unique and sorted in one canonical
//! order ([`Ord`] on `Term`). Every constructor in this crate maintains those
//! invariants, so structural equality (`==`), which takes time linear in the
//! terms, is Erlang's exact equality (`=:=`).

use std::borrow::Cow;
use std::cmp::Ordering;

use num_bigint::BigInt;

use crate::{Error, Result};

/// An Erlang term.
///
/// `==` is Erlang's exact equality (`=:=`): map entries compare regardless
/// of their order.
#[derive(Debug, Clone)]
pub enum Term<'a> {
    /// An atom, by name (at most 255 characters).
    Atom(Cow<'a, str>),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer outside the `i64` range.
    BigInt(BigInt),
    /// A finite float.
    Float(f64),
    /// A binary (whole bytes).
    Binary(Cow<'a, [u8]>),
    /// A bitstring whose size is not a multiple of 8.
    Bitstring(Bitstring<'a>),
    /// A proper list (`[]` when empty).
    List(Vec<Term<'a>>),
    /// An improper list: at least one element and a tail that is not a list.
    ImproperList(Vec<Term<'a>>, Box<Term<'a>>),
    /// A tuple.
    Tuple(Vec<Term<'a>>),
    /// A map: keys unique, entries sorted by key in the canonical order
    /// (`Ord`). Every decoder keeps this; build maps by hand with
    /// [`Term::map`], since `==` relies on it.
    Map(Vec<(Term<'a>, Term<'a>)>),
    /// A process identifier.
    Pid(Box<Pid<'a>>),
    /// A port identifier.
    Port(Box<Port<'a>>),
    /// A reference.
    Reference(Box<Reference<'a>>),
    /// An external fun, `fun Module:Function/Arity`.
    ExternalFun(Box<ExternalFun<'a>>),
    /// A local fun (closure), kept field by field so it round-trips.
    Closure(Box<Closure<'a>>),
}

/// A bitstring: `bytes` holds `(bytes.len() - 1) * 8 + tail_bits` bits,
/// most significant first; the unused low bits of the last byte are zero.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bitstring<'a> {
    /// The data bytes (at least one).
    pub bytes: Cow<'a, [u8]>,
    /// Bits used in the last byte, 1 to 7.
    pub tail_bits: u8,
}

impl Bitstring<'_> {
    /// Total size in bits.
    pub fn bit_size(&self) -> u64 {
        (self.bytes.len() as u64 - 1) * 8 + u64::from(self.tail_bits)
    }
}

/// A process identifier (`NEW_PID_EXT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid<'a> {
    /// Node the process lives on.
    pub node: Cow<'a, str>,
    /// Process number.
    pub id: u32,
    /// Serial.
    pub serial: u32,
    /// Node incarnation.
    pub creation: u32,
}

/// A port identifier (`V4_PORT_EXT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port<'a> {
    /// Node the port lives on.
    pub node: Cow<'a, str>,
    /// Port number.
    pub id: u64,
    /// Node incarnation.
    pub creation: u32,
}

/// A reference (`NEWER_REFERENCE_EXT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference<'a> {
    /// Node that made the reference.
    pub node: Cow<'a, str>,
    /// Node incarnation.
    pub creation: u32,
    /// The id words (1 to 5).
    pub id: Vec<u32>,
}

/// An external fun (`EXPORT_EXT`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalFun<'a> {
    /// Module name.
    pub module: Cow<'a, str>,
    /// Function name.
    pub function: Cow<'a, str>,
    /// Arity.
    pub arity: u8,
}

/// A local fun (`NEW_FUN_EXT`), field by field.
#[derive(Debug, Clone, PartialEq, PartialOrd, Ord)]
pub struct Closure<'a> {
    /// Module that defines the fun.
    pub module: Cow<'a, str>,
    /// Arity.
    pub arity: u8,
    /// MD5 of the module's code (16 bytes).
    pub uniq: [u8; 16],
    /// Index in the module's fun table.
    pub index: u32,
    /// Old index (an integer term on the wire).
    pub old_index: i64,
    /// Old uniq (an integer term on the wire).
    pub old_uniq: i64,
    /// The process that created the fun.
    pub pid: Pid<'a>,
    /// Captured variables.
    pub free_vars: Vec<Term<'a>>,
}

impl PartialEq for Term<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Term::Atom(a), Term::Atom(b)) => a == b,
            (Term::Int(a), Term::Int(b)) => a == b,
            (Term::BigInt(a), Term::BigInt(b)) => a == b,
            (Term::Float(a), Term::Float(b)) => a == b,
            (Term::Binary(a), Term::Binary(b)) => a == b,
            (Term::Bitstring(a), Term::Bitstring(b)) => a == b,
            (Term::List(a), Term::List(b)) | (Term::Tuple(a), Term::Tuple(b)) => a == b,
            (Term::ImproperList(a, x), Term::ImproperList(b, y)) => a == b && x == y,
            // Entries are in canonical order, so maps compare in one pass.
            (Term::Map(a), Term::Map(b)) => a == b,
            (Term::Pid(a), Term::Pid(b)) => a == b,
            (Term::Port(a), Term::Port(b)) => a == b,
            (Term::Reference(a), Term::Reference(b)) => a == b,
            (Term::ExternalFun(a), Term::ExternalFun(b)) => a == b,
            (Term::Closure(a), Term::Closure(b)) => a == b,
            _ => false,
        }
    }
}

// Floats are always finite (constructors reject NaN), so equality is total.
impl Eq for Term<'_> {}
impl Eq for Closure<'_> {}

impl PartialOrd for Term<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The canonical order of terms, which sorts map keys. Kinds of terms come
/// in Erlang's order (number < atom < reference < fun < port < pid < tuple
/// < map < list < bitstring), so keys of one kind sort as OTP sorts them;
/// within a kind, values compare structurally. Consistent with `==`.
impl Ord for Term<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // -0.0 == 0.0 (OTP 25's =:=), so they must not be ordered apart.
        let float = |f: f64| if f == 0.0 { 0.0 } else { f };
        match (self, other) {
            (Term::Int(a), Term::Int(b)) => a.cmp(b),
            (Term::BigInt(a), Term::BigInt(b)) => a.cmp(b),
            (Term::Float(a), Term::Float(b)) => float(*a).total_cmp(&float(*b)),
            (Term::Atom(a), Term::Atom(b)) => a.cmp(b),
            (Term::Binary(a), Term::Binary(b)) => a.cmp(b),
            (Term::Bitstring(a), Term::Bitstring(b)) => a.cmp(b),
            (Term::List(a), Term::List(b)) | (Term::Tuple(a), Term::Tuple(b)) => a.cmp(b),
            (Term::ImproperList(a, x), Term::ImproperList(b, y)) => a.cmp(b).then_with(|| x.cmp(y)),
            (Term::Map(a), Term::Map(b)) => a.cmp(b),
            (Term::Pid(a), Term::Pid(b)) => a.cmp(b),
            (Term::Port(a), Term::Port(b)) => a.cmp(b),
            (Term::Reference(a), Term::Reference(b)) => a.cmp(b),
            (Term::ExternalFun(a), Term::ExternalFun(b)) => a.cmp(b),
            (Term::Closure(a), Term::Closure(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl<'a> Term<'a> {
    /// Where this kind of term stands in the canonical order.
    fn rank(&self) -> u8 {
        match self {
            Term::Int(_) => 0,
            Term::BigInt(_) => 1,
            Term::Float(_) => 2,
            Term::Atom(_) => 3,
            Term::Reference(_) => 4,
            Term::ExternalFun(_) => 5,
            Term::Closure(_) => 6,
            Term::Port(_) => 7,
            Term::Pid(_) => 8,
            Term::Tuple(_) => 9,
            Term::Map(_) => 10,
            Term::List(_) => 11,
            Term::ImproperList(..) => 12,
            Term::Binary(_) => 13,
            Term::Bitstring(_) => 14,
        }
    }

    /// A map from entries in any order: they are put in canonical order; a
    /// repeated key is an error.
    pub fn map(mut entries: Vec<(Term<'a>, Term<'a>)>) -> Result<Self> {
        match canonical_order(&mut entries) {
            Ok(()) => Ok(Term::Map(entries)),
            Err(_) => Err(Error::DuplicateKey),
        }
    }

    /// An atom term.
    pub fn atom(name: impl Into<Cow<'a, str>>) -> Self {
        Term::Atom(name.into())
    }

    /// A binary term.
    pub fn binary(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Term::Binary(bytes.into())
    }

    /// An integer term in canonical form.
    pub fn from_bigint(value: BigInt) -> Self {
        match i64::try_from(&value) {
            Ok(small) => Term::Int(small),
            Err(_) => Term::BigInt(value),
        }
    }

    /// A copy of this term that borrows nothing. Works with an explicit
    /// stack, so deep terms cost heap, never native stack.
    pub fn into_owned(self) -> Term<'static> {
        enum Work<'a> {
            Visit(Term<'a>),
            List(usize),
            Tuple(usize),
            Improper(usize),
            Map(usize),
            Closure(Box<Closure<'static>>, usize),
        }
        let mut work = vec![Work::Visit(self)];
        let mut done: Vec<Term<'static>> = Vec::new();
        let take = |done: &mut Vec<Term<'static>>, n: usize| done.split_off(done.len() - n);
        while let Some(step) = work.pop() {
            match step {
                Work::Visit(Term::List(v)) => {
                    work.push(Work::List(v.len()));
                    work.extend(v.into_iter().rev().map(Work::Visit));
                }
                Work::Visit(Term::Tuple(v)) => {
                    work.push(Work::Tuple(v.len()));
                    work.extend(v.into_iter().rev().map(Work::Visit));
                }
                Work::Visit(Term::ImproperList(v, tail)) => {
                    work.push(Work::Improper(v.len()));
                    work.push(Work::Visit(*tail));
                    work.extend(v.into_iter().rev().map(Work::Visit));
                }
                Work::Visit(Term::Map(entries)) => {
                    work.push(Work::Map(entries.len()));
                    for (k, v) in entries.into_iter().rev() {
                        work.push(Work::Visit(v));
                        work.push(Work::Visit(k));
                    }
                }
                Work::Visit(Term::Closure(c)) => {
                    let Closure {
                        module,
                        arity,
                        uniq,
                        index,
                        old_index,
                        old_uniq,
                        pid,
                        free_vars,
                    } = *c;
                    let head = Closure {
                        module: owned_str(module),
                        arity,
                        uniq,
                        index,
                        old_index,
                        old_uniq,
                        pid: owned_pid(pid),
                        free_vars: Vec::new(),
                    };
                    work.push(Work::Closure(Box::new(head), free_vars.len()));
                    work.extend(free_vars.into_iter().rev().map(Work::Visit));
                }
                Work::Visit(leaf) => done.push(leaf.leaf_into_owned()),
                Work::List(n) => {
                    let items = take(&mut done, n);
                    done.push(Term::List(items));
                }
                Work::Tuple(n) => {
                    let items = take(&mut done, n);
                    done.push(Term::Tuple(items));
                }
                Work::Improper(n) => {
                    let mut items = take(&mut done, n + 1);
                    let tail = items.pop().expect("tail was visited");
                    done.push(Term::ImproperList(items, Box::new(tail)));
                }
                Work::Map(n) => {
                    let flat = take(&mut done, 2 * n);
                    done.push(Term::Map(into_pairs(flat)));
                }
                Work::Closure(mut head, n) => {
                    head.free_vars = take(&mut done, n);
                    done.push(Term::Closure(head));
                }
            }
        }
        done.pop().expect("one term was visited")
    }

    fn leaf_into_owned(self) -> Term<'static> {
        match self {
            Term::Atom(a) => Term::Atom(owned_str(a)),
            Term::Int(i) => Term::Int(i),
            Term::BigInt(b) => Term::BigInt(b),
            Term::Float(f) => Term::Float(f),
            Term::Binary(b) => Term::Binary(Cow::Owned(b.into_owned())),
            Term::Bitstring(b) => Term::Bitstring(Bitstring {
                bytes: Cow::Owned(b.bytes.into_owned()),
                tail_bits: b.tail_bits,
            }),
            Term::Pid(p) => Term::Pid(Box::new(owned_pid(*p))),
            Term::Port(p) => {
                let Port { node, id, creation } = *p;
                Term::Port(Box::new(Port {
                    node: owned_str(node),
                    id,
                    creation,
                }))
            }
            Term::Reference(r) => {
                let Reference { node, creation, id } = *r;
                Term::Reference(Box::new(Reference {
                    node: owned_str(node),
                    creation,
                    id,
                }))
            }
            Term::ExternalFun(f) => {
                let ExternalFun {
                    module,
                    function,
                    arity,
                } = *f;
                Term::ExternalFun(Box::new(ExternalFun {
                    module: owned_str(module),
                    function: owned_str(function),
                    arity,
                }))
            }
            container => unreachable!("into_owned handles containers: {container:?}"),
        }
    }
}

fn owned_str(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

fn owned_pid(p: Pid<'_>) -> Pid<'static> {
    Pid {
        node: owned_str(p.node),
        id: p.id,
        serial: p.serial,
        creation: p.creation,
    }
}

/// `[k1, v1, k2, v2, …]` as `[(k1, v1), (k2, v2), …]`.
fn into_pairs<'a>(flat: Vec<Term<'a>>) -> Vec<(Term<'a>, Term<'a>)> {
    let mut entries = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
        entries.push((key, value));
    }
    entries
}

/// Sorts map entries into canonical key order (a no-op, checked in one pass,
/// for entries that already are, as OTP writes small maps). On a repeated
/// key, gives the index of one of its entries.
pub(crate) fn canonical_order(entries: &mut [(Term<'_>, Term<'_>)]) -> Result<(), usize> {
    if entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Ok(());
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    match entries.windows(2).position(|pair| pair[0].0 == pair[1].0) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}
