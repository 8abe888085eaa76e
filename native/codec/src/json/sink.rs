//! The event interface every JSON producer in this crate drives, and the
//! text writer that implements it.

use crate::Error;

/// Receives a JSON document as a stream of events, in document order.
///
/// [`crate::json::write`] drives a sink from a [`crate::Term`]; the text
/// writer [`JsonText`] is one sink, and the PostgreSQL extension builds
/// `jsonb` values directly through another, with no JSON text in between.
///
/// Numbers arrive either as an `i64` or as JSON number text (big integers,
/// and floats, which always contain a `.`).
pub trait JsonSink {
    /// Error type; the codec's own errors convert into it.
    type Error: From<Error>;
    /// `null`.
    fn null(&mut self) -> Result<(), Self::Error>;
    /// `true` / `false`.
    fn bool(&mut self, value: bool) -> Result<(), Self::Error>;
    /// An integer that fits in 64 bits.
    fn int(&mut self, value: i64) -> Result<(), Self::Error>;
    /// Any other number, as valid JSON number text.
    fn number(&mut self, text: &str) -> Result<(), Self::Error>;
    /// A string (never contains NUL).
    fn string(&mut self, value: &str) -> Result<(), Self::Error>;
    /// `[`; `len` is the number of elements that will follow.
    fn begin_array(&mut self, len: usize) -> Result<(), Self::Error>;
    /// `]`.
    fn end_array(&mut self) -> Result<(), Self::Error>;
    /// `{`; `len` is the number of keys that will follow.
    fn begin_object(&mut self, len: usize) -> Result<(), Self::Error>;
    /// An object key; its value's events follow.
    fn key(&mut self, key: &str) -> Result<(), Self::Error>;
    /// `}`.
    fn end_object(&mut self) -> Result<(), Self::Error>;
}

/// A [`JsonSink`] that writes compact JSON text.
#[derive(Debug, Default)]
pub struct JsonText {
    out: String,
    need_comma: bool,
}

impl JsonText {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` of output.
    pub fn with_capacity(bytes: usize) -> Self {
        JsonText {
            out: String::with_capacity(bytes),
            need_comma: false,
        }
    }

    /// The text written so far.
    pub fn into_string(self) -> String {
        self.out
    }

    fn separate(&mut self) {
        if self.need_comma {
            self.out.push(',');
        }
        self.need_comma = true;
    }

    fn open(&mut self, bracket: char) {
        self.separate();
        self.out.push(bracket);
        self.need_comma = false;
    }

    fn close(&mut self, bracket: char) {
        self.out.push(bracket);
        self.need_comma = true;
    }

    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        write_escaped(&mut self.out, s);
        self.out.push('"');
    }
}

impl JsonSink for JsonText {
    type Error = Error;
    fn null(&mut self) -> Result<(), Error> {
        self.separate();
        self.out.push_str("null");
        Ok(())
    }
    fn bool(&mut self, value: bool) -> Result<(), Error> {
        self.separate();
        self.out.push_str(if value { "true" } else { "false" });
        Ok(())
    }
    fn int(&mut self, value: i64) -> Result<(), Error> {
        self.separate();
        self.out.push_str(itoa::Buffer::new().format(value));
        Ok(())
    }
    fn number(&mut self, text: &str) -> Result<(), Error> {
        self.separate();
        self.out.push_str(text);
        Ok(())
    }
    fn string(&mut self, value: &str) -> Result<(), Error> {
        self.separate();
        self.quoted(value);
        Ok(())
    }
    fn begin_array(&mut self, _len: usize) -> Result<(), Error> {
        self.open('[');
        Ok(())
    }
    fn end_array(&mut self) -> Result<(), Error> {
        self.close(']');
        Ok(())
    }
    fn begin_object(&mut self, _len: usize) -> Result<(), Error> {
        self.open('{');
        Ok(())
    }
    fn key(&mut self, key: &str) -> Result<(), Error> {
        self.separate();
        self.quoted(key);
        self.out.push(':');
        self.need_comma = false;
        Ok(())
    }
    fn end_object(&mut self) -> Result<(), Error> {
        self.close('}');
        Ok(())
    }
}

/// For each byte: 0 = copy as is, otherwise the character after `\`
/// (`u` meaning a `\u00XX` escape).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A word with the high bit set in (at least) each byte of `w` that is zero,
/// and possibly in bytes after one; never when no byte is zero.
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// How many leading bytes of `bytes` lie in whole 8-byte words for which
/// `hit` is zero: 64 bytes at a time while it can, then 8.
fn clean_words(bytes: &[u8], hit: impl Fn(u64) -> u64) -> usize {
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    // A block of eight words folded into one test vectorises well.
    while i + 64 <= bytes.len() && (0..8).fold(0, |acc, k| acc | hit(word(i + 8 * k))) == 0 {
        i += 64;
    }
    while i + 8 <= bytes.len() && hit(word(i)) == 0 {
        i += 8;
    }
    i
}

/// Whether every byte is ASCII and none is NUL.
pub(crate) fn is_ascii_without_nul(bytes: &[u8]) -> bool {
    // A high bit anywhere, or a zero byte.
    let clean = clean_words(bytes, |w| (w | zero_bytes(w)) & HIGHS);
    bytes[clean..].iter().all(|&b| b != 0 && b < 0x80)
}

/// How many leading bytes need no escaping in a JSON string (no control
/// character, `"` or `\\`).
pub(crate) fn plain_prefix(bytes: &[u8]) -> usize {
    let needs_escape = |w: u64| {
        // Bytes below 0x20 (high bit clear and still clear after
        // subtracting 0x20 would borrow), '"', '\\'.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        control
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
    };
    let clean = clean_words(bytes, needs_escape);
    clean
        + bytes[clean..]
            .iter()
            .take_while(|&&b| ESCAPE[usize::from(b)] == 0)
            .count()
}

/// Appends `text` with JSON escapes. Escaped bytes are ASCII, so every
/// slice taken here ends on a character boundary.
fn write_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Scan at most this much before copying it, so the copy reads from cache.
    const CHUNK: usize = 4096;
    out.reserve(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let window = &rest.as_bytes()[..rest.len().min(CHUNK)];
        let mut plain = plain_prefix(window);
        if plain == window.len() {
            // No escape in this window; copy it whole, up to a character boundary.
            while !rest.is_char_boundary(plain) {
                plain -= 1;
            }
            out.push_str(&rest[..plain]);
            rest = &rest[plain..];
            continue;
        }
        // The byte at `plain` needs an escape; it is ASCII, so both slices
        // below end on character boundaries.
        out.push_str(&rest[..plain]);
        let b = window[plain];
        out.push('\\');
        match ESCAPE[usize::from(b)] {
            b'u' => {
                out.push_str("u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            escape => out.push(char::from(escape)),
        }
        rest = &rest[plain + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_escape_across_chunks() {
        // Multi-byte characters straddling the 4 KiB scan windows, with escapes between.
        let text: String = (0..3000)
            .map(|i| ["é", "日", "😀", "\"", "\n", "a", "\u{1}"][i % 7])
            .collect();
        let mut out = String::new();
        write_escaped(&mut out, &text);
        let obvious: String = text
            .chars()
            .map(|c| match c {
                '"' => "\\\"".to_string(),
                '\n' => "\\n".to_string(),
                '\u{1}' => "\\u0001".to_string(),
                c => c.to_string(),
            })
            .collect();
        assert_eq!(out, obvious);
        assert_eq!(
            crate::json::parse(&format!("\"{out}\"")).unwrap(),
            crate::Term::binary(text.into_bytes())
        );
    }

    #[test]
    fn plain_prefix_agrees_with_the_escape_table() {
        for len in 0..70 {
            for pos in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\', 0x20, 0x7f, 0xc3, b'!', b']', b'#'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = special;
                    let obvious = bytes
                        .iter()
                        .take_while(|&&b| ESCAPE[usize::from(b)] == 0)
                        .count();
                    assert_eq!(plain_prefix(&bytes), obvious, "{bytes:?}");
                }
            }
        }
    }
}
