//! [`Term`] → ETF bytes, in the forms OTP 25's `term_to_binary/2` with
//! `{minor_version, 2}` uses (UTF-8 atoms, `NEW_FLOAT_EXT`, `NEW_PID_EXT`, …).

use num_bigint::Sign;

use super::tag::*;
use super::MAX_ATOM_CHARS;
use crate::term::{Pid, Term};
use crate::{Error, Limits, Result};

/// Encodes a term with the leading version byte.
///
/// ```
/// use erlang_cnode_codec::{etf, Term};
/// assert_eq!(etf::encode(&Term::Int(7)).unwrap(), [131, 97, 7]);
/// ```
pub fn encode(term: &Term<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(term, &mut out)?;
    Ok(out)
}

/// Appends a term with the leading version byte to `out`.
pub fn encode_into(term: &Term<'_>, out: &mut Vec<u8>) -> Result<()> {
    out.push(VERSION);
    encode_body_into(term, out)
}

/// Appends a term without the version byte (as terms after a distribution
/// header are sent) to `out`.
pub fn encode_body_into(term: &Term<'_>, out: &mut Vec<u8>) -> Result<()> {
    Encoder {
        out,
        atom_refs: None,
        max_depth: Limits::default().max_depth,
    }
    .run(term)
}

/// Appends a term without the version byte, writing atoms as
/// `ATOM_CACHE_REF`s into `atom_refs` (a distribution header's reference
/// list, at most 255 entries; atoms past that are written inline).
pub fn encode_with_atom_refs(
    term: &Term<'_>,
    out: &mut Vec<u8>,
    atom_refs: &mut Vec<String>,
) -> Result<()> {
    Encoder {
        out,
        atom_refs: Some(atom_refs),
        max_depth: Limits::default().max_depth,
    }
    .run(term)
}

struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    atom_refs: Option<&'o mut Vec<String>>,
    max_depth: usize,
}

impl Encoder<'_> {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    fn len32(&mut self, n: usize) -> Result<()> {
        let n = u32::try_from(n).map_err(|_| Error::TooLarge {
            limit: u32::MAX as usize,
        })?;
        self.u32(n);
        Ok(())
    }

    fn run(&mut self, term: &Term<'_>) -> Result<()> {
        let mut tasks = vec![Task::Term(term, 0)];
        while let Some(task) = tasks.pop() {
            match task {
                Task::Term(term, depth) => self.term(term, depth, &mut tasks)?,
                Task::Nil => self.u8(NIL_EXT),
                Task::PatchFunSize(start) => {
                    let size =
                        u32::try_from(self.out.len() - start - 1).map_err(|_| Error::TooLarge {
                            limit: u32::MAX as usize,
                        })?;
                    self.out[start + 1..start + 5].copy_from_slice(&size.to_be_bytes());
                }
            }
        }
        Ok(())
    }

    fn term<'t, 'a>(
        &mut self,
        term: &'t Term<'a>,
        depth: usize,
        tasks: &mut Vec<Task<'t, 'a>>,
    ) -> Result<()> {
        match term {
            Term::Atom(name) => self.atom(name)?,
            Term::Int(i) => self.int(*i),
            Term::BigInt(b) => {
                let (sign, digits) = b.to_bytes_le();
                self.big(sign == Sign::Minus, &digits)?;
            }
            Term::Float(f) => {
                if !f.is_finite() {
                    return Err(Error::NonFiniteFloat);
                }
                self.u8(NEW_FLOAT_EXT);
                self.out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Term::Binary(bytes) => {
                self.u8(BINARY_EXT);
                self.len32(bytes.len())?;
                self.out.extend_from_slice(bytes);
            }
            Term::Bitstring(bits) => {
                if bits.bytes.is_empty() || !(1..=7).contains(&bits.tail_bits) {
                    return Err(Error::Unsupported {
                        what: "bitstring with no bytes or 0/8 tail bits",
                    });
                }
                self.u8(BIT_BINARY_EXT);
                self.len32(bits.bytes.len())?;
                self.u8(bits.tail_bits);
                let (last, rest) = bits.bytes.split_last().expect("checked non-empty");
                self.out.extend_from_slice(rest);
                self.u8(last & (0xff << (8 - bits.tail_bits)));
            }
            Term::List(items) => self.list(items, None, depth + 1, tasks)?,
            Term::ImproperList(items, tail) => self.list(items, Some(tail), depth + 1, tasks)?,
            Term::Tuple(items) => {
                self.check_depth(depth + 1)?;
                match u8::try_from(items.len()) {
                    Ok(n) => {
                        self.u8(SMALL_TUPLE_EXT);
                        self.u8(n);
                    }
                    Err(_) => {
                        self.u8(LARGE_TUPLE_EXT);
                        self.len32(items.len())?;
                    }
                }
                tasks.extend(items.iter().rev().map(|item| Task::Term(item, depth + 1)));
            }
            Term::Map(entries) => {
                self.check_depth(depth + 1)?;
                self.u8(MAP_EXT);
                self.len32(entries.len())?;
                for (key, value) in entries.iter().rev() {
                    tasks.extend([Task::Term(value, depth + 1), Task::Term(key, depth + 1)]);
                }
            }
            Term::Pid(pid) => self.pid(pid)?,
            Term::Port(port) => {
                match u32::try_from(port.id) {
                    Ok(id) => {
                        self.u8(NEW_PORT_EXT);
                        self.atom(&port.node)?;
                        self.u32(id);
                    }
                    Err(_) => {
                        self.u8(V4_PORT_EXT);
                        self.atom(&port.node)?;
                        self.out.extend_from_slice(&port.id.to_be_bytes());
                    }
                }
                self.u32(port.creation);
            }
            Term::Reference(r) => {
                if r.id.is_empty() || r.id.len() > super::MAX_REFERENCE_WORDS {
                    return Err(Error::Unsupported {
                        what: "reference must have 1 to 5 id words",
                    });
                }
                self.u8(NEWER_REFERENCE_EXT);
                self.u16(r.id.len() as u16);
                self.atom(&r.node)?;
                self.u32(r.creation);
                for word in &r.id {
                    self.u32(*word);
                }
            }
            Term::ExternalFun(f) => {
                self.u8(EXPORT_EXT);
                self.atom(&f.module)?;
                self.atom(&f.function)?;
                self.u8(SMALL_INTEGER_EXT);
                self.u8(f.arity);
            }
            Term::Closure(c) => {
                self.check_depth(depth + 1)?;
                let start = self.out.len();
                self.u8(NEW_FUN_EXT);
                self.u32(0); // size, patched below
                self.u8(c.arity);
                self.out.extend_from_slice(&c.uniq);
                self.u32(c.index);
                self.len32(c.free_vars.len())?;
                self.atom(&c.module)?;
                self.small_int(c.old_index)?;
                self.small_int(c.old_uniq)?;
                self.pid(&c.pid)?;
                tasks.push(Task::PatchFunSize(start));
                tasks.extend(
                    c.free_vars
                        .iter()
                        .rev()
                        .map(|var| Task::Term(var, depth + 1)),
                );
            }
        }
        Ok(())
    }

    fn check_depth(&self, depth: usize) -> Result<()> {
        if depth > self.max_depth {
            return Err(Error::TooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        if (0..=255).contains(&i) {
            self.u8(SMALL_INTEGER_EXT);
            self.u8(i as u8);
        } else if let Ok(small) = i32::try_from(i) {
            self.u8(INTEGER_EXT);
            self.out.extend_from_slice(&small.to_be_bytes());
        } else {
            let magnitude = i.unsigned_abs().to_le_bytes();
            let used = 8 - magnitude.iter().rev().take_while(|&&b| b == 0).count();
            self.big(i < 0, &magnitude[..used])
                .expect("8 bytes fit SMALL_BIG_EXT");
        }
    }

    fn small_int(&mut self, i: i64) -> Result<()> {
        if i32::try_from(i).is_err() {
            return Err(Error::Unsupported {
                what: "closure old_index/old_uniq must fit in 32 bits",
            });
        }
        self.int(i);
        Ok(())
    }

    fn big(&mut self, negative: bool, digits_le: &[u8]) -> Result<()> {
        match u8::try_from(digits_le.len()) {
            Ok(n) => {
                self.u8(SMALL_BIG_EXT);
                self.u8(n);
            }
            Err(_) => {
                self.u8(LARGE_BIG_EXT);
                self.len32(digits_le.len())?;
            }
        }
        self.u8(u8::from(negative));
        self.out.extend_from_slice(digits_le);
        Ok(())
    }

    fn list<'t, 'a>(
        &mut self,
        items: &'t [Term<'a>],
        tail: Option<&'t Term<'a>>,
        depth: usize,
        tasks: &mut Vec<Task<'t, 'a>>,
    ) -> Result<()> {
        // `[]` (NIL_EXT) is a leaf, as in the decoder.
        if items.is_empty() {
            return match tail {
                None => {
                    self.u8(NIL_EXT);
                    Ok(())
                }
                Some(_) => Err(Error::Unsupported {
                    what: "improper list with no elements",
                }),
            };
        }
        self.check_depth(depth)?;
        let bytes_only = tail.is_none()
            && items.len() <= usize::from(u16::MAX)
            && items.iter().all(|t| matches!(t, Term::Int(0..=255)));
        if bytes_only {
            self.u8(STRING_EXT);
            self.u16(items.len() as u16);
            self.out.extend(items.iter().map(|t| match t {
                Term::Int(b) => *b as u8,
                _ => unreachable!("checked above"),
            }));
            return Ok(());
        }
        self.u8(LIST_EXT);
        self.len32(items.len())?;
        tasks.push(match tail {
            None => Task::Nil,
            Some(tail) => Task::Term(tail, depth),
        });
        tasks.extend(items.iter().rev().map(|item| Task::Term(item, depth)));
        Ok(())
    }

    fn pid(&mut self, pid: &Pid<'_>) -> Result<()> {
        self.u8(NEW_PID_EXT);
        self.atom(&pid.node)?;
        self.u32(pid.id);
        self.u32(pid.serial);
        self.u32(pid.creation);
        Ok(())
    }

    fn atom(&mut self, name: &str) -> Result<()> {
        if name.len() > MAX_ATOM_CHARS && name.chars().count() > MAX_ATOM_CHARS {
            return Err(Error::AtomTooLong);
        }
        if let Some(refs) = self.atom_refs.as_deref_mut() {
            let index = match refs.iter().position(|a| a == name) {
                Some(i) => Some(i),
                None if refs.len() < 255 => {
                    refs.push(name.to_owned());
                    Some(refs.len() - 1)
                }
                None => None,
            };
            if let Some(i) = index {
                self.u8(ATOM_CACHE_REF);
                self.u8(i as u8);
                return Ok(());
            }
        }
        match u8::try_from(name.len()) {
            Ok(n) => {
                self.u8(SMALL_ATOM_UTF8_EXT);
                self.u8(n);
            }
            Err(_) => {
                self.u8(ATOM_UTF8_EXT);
                self.u16(name.len() as u16);
            }
        }
        self.out.extend_from_slice(name.as_bytes());
        Ok(())
    }
}

/// One step of encoding. Containers write their header and push their
/// contents as tasks (in reverse), so nesting costs heap, never native stack.
enum Task<'t, 'a> {
    Term(&'t Term<'a>, usize),
    Nil,
    /// Write the size field of the `NEW_FUN_EXT` that starts at this offset.
    PatchFunSize(usize),
}
