//! JSON events → [`Term`]: the one place where the mapping of
//! `docs/term-mapping.md` reads JSON, whatever produces the events — the
//! text parser here, or PostgreSQL's `jsonb` iterator in the extension
//! (which so reads arguments without a text round trip).

use std::borrow::Cow;

use num_bigint::BigInt;

use super::tags::{self, interpret, Parsed, TAIL};
use super::write::MAX_INTEGER_DIGITS;
use crate::term::{canonical_order, Term};
use crate::{Error, Limits, Result};

/// An array or object whose contents are being read, with the greatest
/// term depth among them so far.
enum Frame<'a> {
    Array {
        items: Vec<Term<'a>>,
        tail: Option<Term<'a>>,
        depth: usize,
    },
    Object {
        entries: Vec<(Term<'a>, Term<'a>)>,
        key: Cow<'a, str>,
        depth: usize,
    },
}

fn misplaced_tail() -> Error {
    Error::BadTag {
        tag: TAIL,
        problem: "$tail may only end an array",
    }
}

/// Builds one term from the events of one JSON document, with the limits
/// of [`crate::json::parse_with`]: a term nested deeper than
/// `limits.max_depth`, or JSON nested far deeper than any such term needs,
/// is an error, and nesting costs heap, never native stack.
///
/// ```
/// use erlang_cnode_codec::{json::Builder, Limits, Term};
/// let mut b = Builder::new(&Limits::default());
/// b.begin_object().unwrap();
/// b.key("$atom".into());
/// b.string("ok".into()).unwrap();
/// b.end_object().unwrap();
/// assert_eq!(b.finish().unwrap(), Term::atom("ok"));
/// ```
pub struct Builder<'a> {
    stack: Vec<Frame<'a>>,
    max_depth: usize,
    json_limit: usize,
    done: Option<Term<'a>>,
}

impl<'a> Builder<'a> {
    /// A builder for one document.
    pub fn new(limits: &Limits) -> Builder<'a> {
        let max_depth = limits.max_depth;
        Builder {
            stack: Vec::new(),
            max_depth,
            // A tagged form takes at most three JSON levels per term level
            // (`{"$map": [[k, v]]}`), plus three at a leaf (`$reference`).
            json_limit: max_depth.saturating_mul(3).saturating_add(3),
            done: None,
        }
    }

    fn too_deep(&self) -> Error {
        Error::TooDeep {
            limit: self.max_depth,
        }
    }

    fn open(&mut self, frame: Frame<'a>) -> Result<()> {
        if self.stack.len() >= self.json_limit || self.done.is_some() {
            return Err(if self.done.is_some() {
                Error::JsonSyntax {
                    expected: "end of input",
                    offset: 0,
                }
            } else {
                self.too_deep()
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    /// `[`.
    pub fn begin_array(&mut self) -> Result<()> {
        self.open(Frame::Array {
            items: Vec::new(),
            tail: None,
            depth: 0,
        })
    }

    /// `]`.
    pub fn end_array(&mut self) -> Result<()> {
        let Some(Frame::Array { items, tail, depth }) = self.stack.pop() else {
            return Err(unbalanced());
        };
        // `[]` is a leaf; any other list is one level above its items.
        let depth = if items.is_empty() && tail.is_none() {
            0
        } else {
            depth + 1
        };
        let term = match tail {
            None => Term::List(items),
            Some(_) if items.is_empty() => {
                return Err(Error::BadTag {
                    tag: TAIL,
                    problem: "an improper list needs an element before $tail",
                });
            }
            Some(tail) => Term::ImproperList(items, Box::new(tail)),
        };
        self.hand_up(Parsed::Term(term), depth)
    }

    /// `{`.
    pub fn begin_object(&mut self) -> Result<()> {
        self.open(Frame::Object {
            entries: Vec::new(),
            key: Cow::Borrowed(""),
            depth: 0,
        })
    }

    /// An object's key: the next value is its value.
    pub fn key(&mut self, key: Cow<'a, str>) {
        if let Some(Frame::Object { key: slot, .. }) = self.stack.last_mut() {
            *slot = key;
        }
    }

    /// `}`.
    pub fn end_object(&mut self) -> Result<()> {
        let Some(Frame::Object { entries, depth, .. }) = self.stack.pop() else {
            return Err(unbalanced());
        };
        let (value, depth) = object(entries, depth)?;
        self.hand_up(value, depth)
    }

    /// A string: a binary (or an atom name, a key … in a tagged form).
    pub fn string(&mut self, text: Cow<'a, str>) -> Result<()> {
        self.value(Term::Binary(into_bytes(text)))
    }

    /// A number, as JSON writes it: an integer of any size, or a float if
    /// it has a fraction or an exponent.
    pub fn number(&mut self, text: &str) -> Result<()> {
        self.value(number_term(text)?)
    }

    /// Any other scalar: `true`, `false` or `nil` as the atoms they map to.
    pub fn value(&mut self, term: Term<'a>) -> Result<()> {
        self.hand_up(Parsed::Term(term), 0)
    }

    /// The term, once the document is complete.
    pub fn finish(self) -> Result<Term<'a>> {
        match self.done {
            Some(term) if self.stack.is_empty() => Ok(term),
            _ => Err(unbalanced()),
        }
    }

    /// Hands a finished value of term depth `depth` to its container, or
    /// makes it the document's.
    fn hand_up(&mut self, value: Parsed<'a>, depth: usize) -> Result<()> {
        // A tagged form's payload may run one level deeper than the term it
        // becomes (`[[k, v]]` for a map), so values inside get one level of
        // slack; the finished term gets none.
        if depth > self.max_depth.saturating_add(1) {
            return Err(self.too_deep());
        }
        match self.stack.last_mut() {
            None if depth > self.max_depth => Err(self.too_deep()),
            None => match value {
                Parsed::Term(term) if self.done.is_none() => {
                    self.done = Some(term);
                    Ok(())
                }
                Parsed::Term(_) => Err(Error::JsonSyntax {
                    expected: "end of input",
                    offset: 0,
                }),
                Parsed::Tail(_) => Err(misplaced_tail()),
            },
            Some(Frame::Array {
                items,
                tail,
                depth: deepest,
            }) => {
                if tail.is_some() {
                    return Err(misplaced_tail());
                }
                *deepest = (*deepest).max(depth);
                match value {
                    Parsed::Term(term) => items.push(term),
                    Parsed::Tail(term) => *tail = Some(term),
                }
                Ok(())
            }
            Some(Frame::Object {
                entries,
                key,
                depth: deepest,
            }) => {
                *deepest = (*deepest).max(depth);
                let Parsed::Term(term) = value else {
                    return Err(misplaced_tail());
                };
                entries.push((Term::Binary(into_bytes(std::mem::take(key))), term));
                Ok(())
            }
        }
    }
}

fn unbalanced() -> Error {
    Error::JsonSyntax {
        expected: "balanced brackets",
        offset: 0,
    }
}

/// A JSON number's text (already checked to be one) as a term.
pub(crate) fn number_term<'a>(text: &str) -> Result<Term<'a>> {
    let is_float = text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if is_float {
        let value: f64 = text.parse().map_err(|_| Error::JsonSyntax {
            expected: "a JSON number",
            offset: 0,
        })?;
        return if value.is_finite() {
            Ok(Term::Float(value))
        } else {
            Err(Error::NonFiniteFloat)
        };
    }
    let int_digits = text.trim_start_matches('-').len();
    if int_digits <= 18 {
        return text.parse().map(Term::Int).map_err(|_| Error::JsonSyntax {
            expected: "a JSON number",
            offset: 0,
        });
    }
    if int_digits > MAX_INTEGER_DIGITS {
        return Err(Error::IntegerTooLarge {
            limit: MAX_INTEGER_DIGITS,
        });
    }
    text.parse::<BigInt>()
        .map(Term::from_bigint)
        .map_err(|_| Error::JsonSyntax {
            expected: "a JSON number",
            offset: 0,
        })
}

/// A JSON string as the bytes of a binary, without copying.
fn into_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// A finished object (keys are binaries made from JSON strings), whose
/// values reach term depth `deepest`: a tagged form, or a map; with the term
/// depth of the result.
fn object<'a>(
    mut entries: Vec<(Term<'a>, Term<'a>)>,
    deepest: usize,
) -> Result<(Parsed<'a>, usize)> {
    if let [(Term::Binary(key), _)] = entries.as_slice() {
        if let Some(tag) = tags::ALL.iter().find(|tag| tag.as_bytes() == key.as_ref()) {
            let (_, payload) = entries.pop().expect("one entry");
            return Ok((interpret(tag, payload)?, tags::depth_of(tag, deepest)));
        }
    }
    match canonical_order(&mut entries) {
        Ok(()) => Ok((Parsed::Term(Term::Map(entries)), deepest + 1)),
        Err(i) => Err(Error::JsonDuplicateKey {
            key: match &entries[i].0 {
                Term::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => unreachable!("JSON object keys are binaries"),
            },
        }),
    }
}
