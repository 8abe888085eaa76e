//! ETF bytes → [`Term`].

use std::borrow::Cow;
use std::io::Read;

use num_bigint::{BigInt, Sign};

use super::tag::*;
use super::{MAX_ATOM_CHARS, MAX_REFERENCE_WORDS};
use crate::term::{Bitstring, Closure, ExternalFun, Pid, Port, Reference, Term};
use crate::{Error, Limits, Result};

/// Decodes one complete term, with or without the leading version byte 131,
/// compressed or not, under the default [`Limits`]. Trailing bytes are an error.
///
/// ```
/// use erlang_cnode_codec::{etf, Term};
/// let term = etf::decode(&[131, 100, 0, 2, b'o', b'k']).unwrap();
/// assert_eq!(term, Term::atom("ok"));
/// ```
pub fn decode(bytes: &[u8]) -> Result<Term<'_>> {
    let mut decoder = Decoder::new(bytes);
    let term = decoder.next_term()?;
    decoder.finish()?;
    Ok(term)
}

/// A container being read.
struct Open<'a> {
    kind: Kind<'a>,
    /// Elements so far (lists, tuples, closures' free variables).
    items: Vec<Term<'a>>,
    /// Entries so far (maps).
    entries: Vec<(Term<'a>, Term<'a>)>,
    /// A map key whose value is still to come.
    key: Option<Term<'a>>,
    /// Values still to read (for a map: entries).
    left: usize,
    /// Whether the last item is an improper list's tail.
    tail: bool,
}

enum Kind<'a> {
    List,
    Tuple,
    Map,
    Closure(Box<ClosureHead<'a>>),
}

struct ClosureHead<'a> {
    start: usize,
    size: usize,
    closure: Closure<'a>,
}

impl<'a> Open<'a> {
    fn push(&mut self, value: Term<'a>) {
        if !matches!(self.kind, Kind::Map) {
            self.items.push(value);
            self.left -= 1;
        } else if let Some(key) = self.key.take() {
            self.entries.push((key, value));
            self.left -= 1;
        } else {
            self.key = Some(value);
        }
    }
}

/// A reader of consecutive terms from one buffer (e.g. a distribution
/// message: control message, then payload).
#[derive(Debug)]
pub struct Decoder<'a, 'c> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    atom_refs: Option<&'c [String]>,
}

impl<'a, 'c> Decoder<'a, 'c> {
    /// A decoder over `input`, with default limits and no atom cache.
    pub fn new(input: &'a [u8]) -> Self {
        Decoder {
            input,
            pos: 0,
            limits: Limits::default(),
            atom_refs: None,
        }
    }

    /// Use these limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Resolve `ATOM_CACHE_REF`s against the atoms a distribution header
    /// referenced (see [`super::DistHeader`]).
    pub fn with_atom_refs(mut self, atoms: &'c [String]) -> Self {
        self.atom_refs = Some(atoms);
        self
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    /// Errors if any input is left.
    pub fn finish(&self) -> Result<()> {
        match self.input.len() - self.pos {
            0 => Ok(()),
            extra => Err(Error::TrailingBytes { extra }),
        }
    }

    /// Decodes the next term. A leading version byte is skipped; a compressed
    /// term is inflated (never past [`Limits::max_size`]).
    pub fn next_term(&mut self) -> Result<Term<'a>> {
        if self.peek()? == VERSION {
            self.pos += 1;
        }
        if self.peek()? != COMPRESSED {
            return self.term();
        }
        self.pos += 1;
        let size = self.u32()? as usize;
        if size > self.limits.max_size {
            return Err(Error::TooLarge {
                limit: self.limits.max_size,
            });
        }
        let (inflated, consumed) = inflate(self.remaining(), size)?;
        self.pos += consumed;
        let mut inner = Decoder {
            input: &inflated,
            pos: 0,
            limits: self.limits,
            atom_refs: self.atom_refs,
        };
        let term = inner.term()?;
        inner.finish()?;
        Ok(term.into_owned())
    }

    fn peek(&self) -> Result<u8> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(Error::UnexpectedEnd { offset: self.pos })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.input.len());
        let end = end.ok_or(Error::UnexpectedEnd {
            offset: self.input.len(),
        })?;
        let slice = &self.input[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn malformed(&self, what: &'static str) -> Error {
        Error::Malformed {
            what,
            offset: self.pos,
        }
    }

    /// Reads one term with an explicit stack of open containers, so that
    /// nesting costs heap, never native stack.
    fn term(&mut self) -> Result<Term<'a>> {
        let mut stack: Vec<Open<'a>> = Vec::new();
        // Room reserved up front, counted in input bytes: each item takes at
        // least one byte, so all containers together never reserve more
        // than the input could fill, however many elements they claim.
        let mut budget = self.input.len() - self.pos;
        loop {
            let mut done = match self.peek()? {
                LIST_EXT | SMALL_TUPLE_EXT | LARGE_TUPLE_EXT | MAP_EXT | NEW_FUN_EXT => {
                    if stack.len() >= self.limits.max_depth {
                        return Err(Error::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    let open = self.open(&mut budget)?;
                    stack.push(open);
                    None
                }
                // A non-empty STRING_EXT is a list of integers: one level deep.
                STRING_EXT
                    if stack.len() >= self.limits.max_depth
                        && self.input.get(self.pos + 1..self.pos + 3) != Some(&[0, 0]) =>
                {
                    return Err(Error::TooDeep {
                        limit: self.limits.max_depth,
                    });
                }
                _ => Some(self.leaf()?),
            };
            // Give the finished value to the innermost container and close
            // every container that is now complete.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(done.expect("a value is finished when no container is open"));
                };
                if let Some(value) = done.take() {
                    top.push(value);
                }
                if !self.complete(top)? {
                    break;
                }
                let finished = stack.pop().expect("top exists");
                done = Some(self.close(finished)?);
            }
        }
    }

    /// Reads a container's header, reserving room for its items out of
    /// `budget`.
    fn open(&mut self, budget: &mut usize) -> Result<Open<'a>> {
        let start = self.pos;
        let tag = self.u8()?;
        let (kind, left) = match tag {
            LIST_EXT => (Kind::List, self.u32()? as usize),
            SMALL_TUPLE_EXT => (Kind::Tuple, usize::from(self.u8()?)),
            LARGE_TUPLE_EXT => (Kind::Tuple, self.u32()? as usize),
            MAP_EXT => (Kind::Map, self.u32()? as usize),
            _ => {
                let (head, left) = self.closure_head(start)?;
                (Kind::Closure(Box::new(head)), left)
            }
        };
        // A map entry takes at least two bytes, any other item one. Past
        // `MAX_RESERVE` items a container grows as its items really arrive.
        const MAX_RESERVE: usize = 1 << 16;
        let item_bytes = if matches!(kind, Kind::Map) { 2 } else { 1 };
        let capacity = left.min(*budget / item_bytes).min(MAX_RESERVE);
        *budget -= capacity * item_bytes;
        let (items, entries) = match kind {
            Kind::Map => (Vec::new(), Vec::with_capacity(capacity)),
            _ => (Vec::with_capacity(capacity), Vec::new()),
        };
        Ok(Open {
            kind,
            items,
            entries,
            key: None,
            left,
            tail: false,
        })
    }

    /// Whether `open` has all it needs; reads list tails that are lists.
    fn complete(&mut self, open: &mut Open<'a>) -> Result<bool> {
        if open.left > 0 || open.key.is_some() {
            return Ok(false);
        }
        if !matches!(open.kind, Kind::List) || open.tail {
            return Ok(true);
        }
        // The elements of a LIST_EXT are in; what follows is its tail.
        loop {
            match self.peek()? {
                NIL_EXT => {
                    self.pos += 1;
                    return Ok(true);
                }
                LIST_EXT => {
                    // [a | [b]] is [a, b]: keep filling the same list.
                    self.pos += 1;
                    open.left = self.u32()? as usize;
                    if open.left > 0 {
                        return Ok(false);
                    }
                }
                STRING_EXT => {
                    self.pos += 1;
                    open.items.extend(self.string_ext()?);
                    return Ok(true);
                }
                _ => {
                    open.tail = true;
                    open.left = 1;
                    return Ok(false);
                }
            }
        }
    }

    /// The term a complete container stands for.
    fn close(&self, open: Open<'a>) -> Result<Term<'a>> {
        let Open {
            kind,
            mut items,
            entries,
            tail,
            ..
        } = open;
        Ok(match kind {
            Kind::Tuple => Term::Tuple(items),
            Kind::List if !tail => Term::List(items),
            Kind::List => {
                let tail = items.pop().expect("a tail was read");
                if items.is_empty() {
                    tail
                } else {
                    Term::ImproperList(items, Box::new(tail))
                }
            }
            Kind::Map => Term::map(entries)?,
            Kind::Closure(head) => {
                let ClosureHead {
                    start,
                    size,
                    closure,
                } = *head;
                // Size counts every byte of the fun but its tag.
                if self.pos - start - 1 != size {
                    return Err(Error::Malformed {
                        what: "NEW_FUN_EXT size does not match its contents",
                        offset: start,
                    });
                }
                Term::Closure(Box::new(Closure {
                    free_vars: items,
                    ..closure
                }))
            }
        })
    }

    /// The body of a `STRING_EXT` (after its tag): a list of byte-sized integers.
    fn string_ext(&mut self) -> Result<impl Iterator<Item = Term<'a>> + 'a> {
        let n = usize::from(self.u16()?);
        Ok(self.take(n)?.iter().map(|&b| Term::Int(i64::from(b))))
    }

    fn leaf(&mut self) -> Result<Term<'a>> {
        let start = self.pos;
        let tag = self.u8()?;
        Ok(match tag {
            SMALL_INTEGER_EXT => Term::Int(i64::from(self.u8()?)),
            INTEGER_EXT => Term::Int(i64::from(self.u32()? as i32)),
            SMALL_BIG_EXT => {
                let n = usize::from(self.u8()?);
                self.big(n)?
            }
            LARGE_BIG_EXT => {
                let n = self.u32()? as usize;
                self.big(n)?
            }
            NEW_FLOAT_EXT => finite(f64::from_bits(self.u64()?))?,
            FLOAT_EXT => {
                let text = self.take(31)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                let text = std::str::from_utf8(&text[..end])
                    .map_err(|_| self.malformed("bad FLOAT_EXT text"))?;
                finite(
                    text.trim()
                        .parse::<f64>()
                        .map_err(|_| self.malformed("bad FLOAT_EXT text"))?,
                )?
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT | ATOM_CACHE_REF => {
                self.pos = start;
                Term::Atom(self.atom()?)
            }
            NIL_EXT => Term::List(Vec::new()),
            STRING_EXT => Term::List(self.string_ext()?.collect()),
            BINARY_EXT => {
                let n = self.u32()? as usize;
                Term::Binary(Cow::Borrowed(self.take(n)?))
            }
            BIT_BINARY_EXT => self.bitstring()?,
            PID_EXT | NEW_PID_EXT => {
                self.pos = start;
                Term::Pid(Box::new(self.pid()?))
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                let node = self.node()?;
                let (id, creation) = match tag {
                    PORT_EXT => (u64::from(self.u32()?), u32::from(self.u8()?)),
                    NEW_PORT_EXT => (u64::from(self.u32()?), self.u32()?),
                    _ => (self.u64()?, self.u32()?),
                };
                Term::Port(Box::new(Port { node, id, creation }))
            }
            REFERENCE_EXT => {
                let node = self.node()?;
                let id = vec![self.u32()?];
                let creation = u32::from(self.u8()?);
                Term::Reference(Box::new(Reference { node, creation, id }))
            }
            NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let words = usize::from(self.u16()?);
                if words == 0 || words > MAX_REFERENCE_WORDS {
                    return Err(self.malformed("reference id must have 1 to 5 words"));
                }
                let node = self.node()?;
                let creation = if tag == NEW_REFERENCE_EXT {
                    u32::from(self.u8()?)
                } else {
                    self.u32()?
                };
                let id = (0..words).map(|_| self.u32()).collect::<Result<_>>()?;
                Term::Reference(Box::new(Reference { node, creation, id }))
            }
            EXPORT_EXT => {
                let module = self.atom()?;
                let function = self.atom()?;
                if self.u8()? != SMALL_INTEGER_EXT {
                    return Err(self.malformed("EXPORT_EXT arity must be SMALL_INTEGER_EXT"));
                }
                let arity = self.u8()?;
                Term::ExternalFun(Box::new(ExternalFun {
                    module,
                    function,
                    arity,
                }))
            }
            _ => return Err(Error::UnknownTag { tag, offset: start }),
        })
    }

    fn big(&mut self, n: usize) -> Result<Term<'a>> {
        let sign = match self.u8()? {
            0 => Sign::Plus,
            1 => Sign::Minus,
            _ => return Err(self.malformed("big integer sign must be 0 or 1")),
        };
        let digits = self.take(n)?;
        Ok(Term::from_bigint(BigInt::from_bytes_le(sign, digits)))
    }

    fn bitstring(&mut self) -> Result<Term<'a>> {
        let n = self.u32()? as usize;
        let bits = self.u8()?;
        // OTP reads no bytes with no bits as <<>>.
        if n == 0 && bits == 0 {
            return Ok(Term::Binary(Cow::Borrowed(&[])));
        }
        if !(1..=8).contains(&bits) || n == 0 {
            return Err(self.malformed("BIT_BINARY_EXT needs 1 to 8 bits in a last byte"));
        }
        let data = self.take(n)?;
        if bits == 8 {
            return Ok(Term::Binary(Cow::Borrowed(data)));
        }
        let mask = 0xffu8 << (8 - bits);
        let bytes = if data[n - 1] & !mask == 0 {
            Cow::Borrowed(data)
        } else {
            let mut owned = data.to_vec();
            owned[n - 1] &= mask;
            Cow::Owned(owned)
        };
        Ok(Term::Bitstring(Bitstring {
            bytes,
            tail_bits: bits,
        }))
    }

    fn pid(&mut self) -> Result<Pid<'a>> {
        let tag = self.u8()?;
        if tag != PID_EXT && tag != NEW_PID_EXT {
            return Err(self.malformed("expected a pid"));
        }
        let node = self.node()?;
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = if tag == PID_EXT {
            u32::from(self.u8()?)
        } else {
            self.u32()?
        };
        Ok(Pid {
            node,
            id,
            serial,
            creation,
        })
    }

    fn small_int(&mut self) -> Result<i64> {
        match self.u8()? {
            SMALL_INTEGER_EXT => Ok(i64::from(self.u8()?)),
            INTEGER_EXT => Ok(i64::from(self.u32()? as i32)),
            _ => Err(self.malformed("expected an integer")),
        }
    }

    /// The fields of a `NEW_FUN_EXT` before its free variables, and how
    /// many of those follow.
    fn closure_head(&mut self, start: usize) -> Result<(ClosureHead<'a>, usize)> {
        let size = self.u32()? as usize;
        let arity = self.u8()?;
        let uniq = self.array::<16>()?;
        let index = self.u32()?;
        let num_free = self.u32()? as usize;
        let module = self.atom()?;
        let old_index = self.small_int()?;
        let old_uniq = self.small_int()?;
        let pid = self.pid()?;
        let closure = Closure {
            module,
            arity,
            uniq,
            index,
            old_index,
            old_uniq,
            pid,
            free_vars: Vec::new(),
        };
        Ok((
            ClosureHead {
                start,
                size,
                closure,
            },
            num_free,
        ))
    }

    /// The node of a pid, port or reference: an atom, not empty (no node
    /// has that name; the JSON mapping refuses it too).
    fn node(&mut self) -> Result<Cow<'a, str>> {
        let node = self.atom()?;
        if node.is_empty() {
            return Err(self.malformed("a pid, port or reference needs a node name"));
        }
        Ok(node)
    }

    fn atom(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos;
        let tag = self.u8()?;
        let (latin1, len) = match tag {
            ATOM_EXT => (true, usize::from(self.u16()?)),
            SMALL_ATOM_EXT => (true, usize::from(self.u8()?)),
            ATOM_UTF8_EXT => (false, usize::from(self.u16()?)),
            SMALL_ATOM_UTF8_EXT => (false, usize::from(self.u8()?)),
            ATOM_CACHE_REF => {
                let index = self.u8()?;
                let atom = self
                    .atom_refs
                    .and_then(|atoms| atoms.get(usize::from(index)));
                return atom
                    .map(|name| Cow::Owned(name.clone()))
                    .ok_or(Error::AtomCacheMiss {
                        index: u16::from(index),
                    });
            }
            _ => {
                return Err(Error::Malformed {
                    what: "expected an atom",
                    offset: start,
                })
            }
        };
        let bytes = self.take(len)?;
        if latin1 {
            if len > MAX_ATOM_CHARS {
                return Err(Error::AtomTooLong);
            }
            return Ok(latin1_to_utf8(bytes));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            what: "atom is not UTF-8",
            offset: start,
        })?;
        if len > MAX_ATOM_CHARS && text.chars().count() > MAX_ATOM_CHARS {
            return Err(Error::AtomTooLong);
        }
        Ok(Cow::Borrowed(text))
    }
}

fn finite<'a>(value: f64) -> Result<Term<'a>> {
    if value.is_finite() {
        Ok(Term::Float(value))
    } else {
        Err(Error::NonFiniteFloat)
    }
}

/// Latin-1 bytes as UTF-8; borrows when they are plain ASCII.
pub(crate) fn latin1_to_utf8(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        Cow::Borrowed(std::str::from_utf8(bytes).expect("ASCII is UTF-8"))
    } else {
        Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
    }
}

/// Inflates a zlib stream that must produce exactly `size` bytes. Returns
/// the data and how many compressed bytes the stream took.
///
/// Deflate expands at most 1032:1, so a size field beyond that cannot be
/// true and reserves no more than the stream could produce; a true one is
/// reserved exactly, so the buffer never doubles while filling.
fn inflate(compressed: &[u8], size: usize) -> Result<(Vec<u8>, usize)> {
    const MAX_RATIO: usize = 1032;
    let bad_stream = |_| Error::Decompress {
        what: "bad zlib stream",
    };
    let wrong_size = Error::Decompress {
        what: "inflated size differs from the size field",
    };
    let plausible = compressed
        .len()
        .saturating_mul(MAX_RATIO)
        .saturating_add(64);
    let mut out = Vec::with_capacity(size.min(plausible));
    let mut decoder = flate2::read::ZlibDecoder::new(compressed);
    (&mut decoder)
        .take(size as u64)
        .read_to_end(&mut out)
        .map_err(bad_stream)?;
    if out.len() != size || decoder.read(&mut [0u8; 1]).map_err(bad_stream)? != 0 {
        return Err(wrong_size);
    }
    Ok((out, decoder.total_in() as usize))
}
