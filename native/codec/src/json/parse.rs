//! JSON text → [`Term`] (see `docs/term-mapping.md`).

use std::borrow::Cow;

use num_bigint::BigInt;

use super::sink::plain_prefix;
use super::tags::{self, interpret, Parsed, TAIL};
use super::write::MAX_INTEGER_DIGITS;
use crate::term::{canonical_order, Term};
use crate::{Error, Limits, Result};

/// Parses JSON text into a term under the default [`Limits`]. Strings
/// without escapes are borrowed from `text`.
///
/// ```
/// use erlang_cnode_codec::{json, Term};
/// let term = json::parse(r#"{"$tuple": [{"$atom": "ok"}, 42]}"#).unwrap();
/// assert_eq!(term, Term::Tuple(vec![Term::atom("ok"), Term::Int(42)]));
/// ```
pub fn parse(text: &str) -> Result<Term<'_>> {
    parse_with(text, &Limits::default())
}

/// Parses JSON bytes, which must be UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Term<'_>> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::JsonSyntax {
        expected: "UTF-8 text",
        offset: e.valid_up_to(),
    })?;
    parse(text)
}

/// Parses JSON text under `limits`: a term nested deeper than
/// `limits.max_depth` is an error (the same depth every other conversion
/// allows), and so is JSON nested far deeper than any such term needs;
/// never a stack overflow.
pub fn parse_with<'a>(text: &'a str, limits: &Limits) -> Result<Term<'a>> {
    let max_depth = limits.max_depth;
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let term = parser.document(max_depth)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.expected("end of input"));
    }
    Ok(term)
}

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

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn expected(&self, what: &'static str) -> Error {
        Error::JsonSyntax {
            expected: what,
            offset: self.pos,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &'static str, term: Term<'a>) -> Result<Term<'a>> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(term)
        } else {
            Err(self.expected("a JSON value"))
        }
    }

    /// `"key" :` at the current position.
    fn key(&mut self) -> Result<Cow<'a, str>> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(self.expected("a string key"));
        }
        let key = self.string()?;
        self.skip_ws();
        if !self.eat(b':') {
            return Err(self.expected("':'"));
        }
        Ok(key)
    }

    /// One JSON value, read with an explicit stack of open containers so
    /// that nesting costs heap, never native stack.
    fn document(&mut self, max_depth: usize) -> Result<Term<'a>> {
        // A tagged form takes at most three JSON levels per term level
        // (`{"$map": [[k, v]]}`), plus three at a leaf (`$reference`).
        let json_limit = max_depth.saturating_mul(3).saturating_add(3);
        let too_deep = || Error::TooDeep { limit: max_depth };
        let mut stack: Vec<Frame<'a>> = Vec::new();
        loop {
            // Read the start of a value: a scalar, an empty container, or an
            // opening bracket that pushes a frame.
            self.skip_ws();
            // The value and its term depth (0 for leaves and `[]`).
            let (mut value, mut depth) = match self.bytes.get(self.pos) {
                Some(b'[') | Some(b'{') if stack.len() >= json_limit => return Err(too_deep()),
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if !self.eat(b']') {
                        stack.push(Frame::Array {
                            items: Vec::new(),
                            tail: None,
                            depth: 0,
                        });
                        continue;
                    }
                    (Parsed::Term(Term::List(Vec::new())), 0)
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if !self.eat(b'}') {
                        let key = self.key()?;
                        stack.push(Frame::Object {
                            entries: Vec::new(),
                            key,
                            depth: 0,
                        });
                        continue;
                    }
                    (Parsed::Term(Term::Map(Vec::new())), 1)
                }
                Some(b'"') => (Parsed::Term(Term::Binary(into_bytes(self.string()?))), 0),
                Some(b't') => (Parsed::Term(self.literal("true", Term::atom("true"))?), 0),
                Some(b'f') => (Parsed::Term(self.literal("false", Term::atom("false"))?), 0),
                Some(b'n') => (Parsed::Term(self.literal("null", Term::atom("nil"))?), 0),
                Some(b'-' | b'0'..=b'9') => (Parsed::Term(self.number()?), 0),
                _ => return Err(self.expected("a JSON value")),
            };
            // Hand the finished value to its container; close every container
            // that ends right after it.
            loop {
                // A tagged form's payload may run one level deeper than the
                // term it becomes (`[[k, v]]` for a map), so values inside
                // get one level of slack; the finished term gets none.
                if depth > max_depth.saturating_add(1) {
                    return Err(too_deep());
                }
                self.skip_ws();
                match stack.last_mut() {
                    None if depth > max_depth => return Err(too_deep()),
                    None => {
                        return match value {
                            Parsed::Term(term) => Ok(term),
                            Parsed::Tail(_) => Err(misplaced_tail()),
                        };
                    }
                    Some(Frame::Array {
                        items,
                        tail,
                        depth: deepest,
                    }) => {
                        *deepest = (*deepest).max(depth);
                        match value {
                            Parsed::Term(term) => items.push(term),
                            Parsed::Tail(term) => *tail = Some(term),
                        }
                        if self.eat(b',') {
                            if tail.is_some() {
                                return Err(misplaced_tail());
                            }
                            break;
                        }
                        if !self.eat(b']') {
                            return Err(self.expected("',' or ']'"));
                        }
                        let Some(Frame::Array {
                            items,
                            tail,
                            depth: deepest,
                        }) = stack.pop()
                        else {
                            unreachable!()
                        };
                        // `[]` is a leaf; any other list is one level above its items.
                        depth = if items.is_empty() && tail.is_none() {
                            0
                        } else {
                            deepest + 1
                        };
                        value = Parsed::Term(match tail {
                            None => Term::List(items),
                            Some(_) if items.is_empty() => {
                                return Err(Error::BadTag {
                                    tag: TAIL,
                                    problem: "an improper list needs an element before $tail",
                                });
                            }
                            Some(tail) => Term::ImproperList(items, Box::new(tail)),
                        });
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
                        if self.eat(b',') {
                            self.skip_ws();
                            *key = self.key()?;
                            break;
                        }
                        if !self.eat(b'}') {
                            return Err(self.expected("',' or '}'"));
                        }
                        let Some(Frame::Object {
                            entries,
                            depth: deepest,
                            ..
                        }) = stack.pop()
                        else {
                            unreachable!()
                        };
                        (value, depth) = object(entries, deepest)?;
                    }
                }
            }
        }
    }

    /// A string at `self.pos` (which holds `"`); borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        self.pos += plain_prefix(&self.bytes[self.pos..]);
        loop {
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(self.expected("no control characters in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.expected("'\"'")),
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run_start = self.pos;
            self.pos += plain_prefix(&self.bytes[self.pos..]);
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.expected("no control characters in a string")),
                None => return Err(self.expected("'\"'")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<()> {
        let c = match self.bytes.get(self.pos) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&high) {
                    if !(self.eat(b'\\') && self.eat(b'u')) {
                        return Err(self.expected("a low surrogate escape"));
                    }
                    let low = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(self.expected("a low surrogate escape"));
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                };
                if code == 0 {
                    // PostgreSQL's jsonb cannot store NUL in a string, so no
                    // JSON string here holds one; binaries with NUL use $binary.
                    return Err(
                        self.expected("no \\u0000 in a string (write such data as $binary)")
                    );
                }
                out.push(char::from_u32(code).ok_or(self.expected("a valid Unicode escape"))?);
                return Ok(());
            }
            _ => return Err(self.expected("a valid escape")),
        };
        out.push(c);
        self.pos += 1;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or(self.expected("4 hex digits"))?;
        let mut value = 0;
        for &d in digits {
            value = value * 16
                + char::from(d)
                    .to_digit(16)
                    .ok_or(self.expected("4 hex digits"))?;
        }
        self.pos += 4;
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Term<'a>> {
        let start = self.pos;
        self.eat(b'-');
        let int_start = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return Err(self.expected("a JSON number"));
        }
        let mut is_float = false;
        if self.eat(b'.') {
            is_float = true;
            if self.digits() == 0 {
                return Err(self.expected("a digit after '.'"));
            }
        }
        if self.eat(b'e') || self.eat(b'E') {
            is_float = true;
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return Err(self.expected("a digit in the exponent"));
            }
        }
        let text = &self.text[start..self.pos];
        if is_float {
            let value: f64 = text.parse().map_err(|_| Error::JsonSyntax {
                expected: "a JSON number",
                offset: start,
            })?;
            return if value.is_finite() {
                Ok(Term::Float(value))
            } else {
                Err(Error::NonFiniteFloat)
            };
        }
        if int_digits <= 18 {
            return Ok(Term::Int(
                text.parse().expect("at most 18 digits fit in i64"),
            ));
        }
        if int_digits > MAX_INTEGER_DIGITS {
            return Err(Error::IntegerTooLarge {
                limit: MAX_INTEGER_DIGITS,
            });
        }
        Ok(Term::from_bigint(
            text.parse::<BigInt>().expect("validated decimal digits"),
        ))
    }
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
