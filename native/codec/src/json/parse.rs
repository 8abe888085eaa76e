//! JSON text → [`Term`] (see `docs/term-mapping.md`).

use std::borrow::Cow;

use super::build::Builder;
use super::sink::plain_prefix;
use crate::term::Term;
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
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let term = parser.document(limits)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.expected("end of input"));
    }
    Ok(term)
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

    /// One JSON value, its events handed to a [`Builder`] (which keeps an
    /// explicit stack of open containers, so that nesting costs heap, never
    /// native stack).
    fn document(&mut self, limits: &Limits) -> Result<Term<'a>> {
        let mut builder = Builder::new(limits);
        // How many containers are open, each with whether it is an array.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // Read the start of a value: a scalar, or an opening bracket.
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b'[') => {
                    self.pos += 1;
                    builder.begin_array()?;
                    self.skip_ws();
                    if !self.eat(b']') {
                        open.push(true);
                        continue;
                    }
                    builder.end_array()?;
                }
                Some(b'{') => {
                    self.pos += 1;
                    builder.begin_object()?;
                    self.skip_ws();
                    if !self.eat(b'}') {
                        let key = self.key()?;
                        builder.key(key);
                        open.push(false);
                        continue;
                    }
                    builder.end_object()?;
                }
                Some(b'"') => builder.string(self.string()?)?,
                Some(b't') => builder.value(self.literal("true", Term::atom("true"))?)?,
                Some(b'f') => builder.value(self.literal("false", Term::atom("false"))?)?,
                Some(b'n') => builder.value(self.literal("null", Term::atom("nil"))?)?,
                Some(b'-' | b'0'..=b'9') => {
                    let text = self.number()?;
                    builder.number(text)?;
                }
                _ => return Err(self.expected("a JSON value")),
            }
            // Close every container that ends right after this value.
            loop {
                self.skip_ws();
                match open.last() {
                    None => return builder.finish(),
                    Some(true) => {
                        if self.eat(b',') {
                            break;
                        }
                        if !self.eat(b']') {
                            return Err(self.expected("',' or ']'"));
                        }
                        open.pop();
                        builder.end_array()?;
                    }
                    Some(false) => {
                        if self.eat(b',') {
                            self.skip_ws();
                            let key = self.key()?;
                            builder.key(key);
                            break;
                        }
                        if !self.eat(b'}') {
                            return Err(self.expected("',' or '}'"));
                        }
                        open.pop();
                        builder.end_object()?;
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

    /// A JSON number at the current position, checked: its text.
    fn number(&mut self) -> Result<&'a str> {
        let start = self.pos;
        self.eat(b'-');
        let int_start = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return Err(self.expected("a JSON number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.expected("a digit after '.'"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return Err(self.expected("a digit in the exponent"));
            }
        }
        Ok(&self.text[start..self.pos])
    }
}
