//! [`Term`] → JSON events (see `docs/term-mapping.md`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use num_bigint::BigInt;

use super::sink::is_ascii_without_nul;
use super::tags::{self, is_tag};
use super::JsonSink;
use crate::term::{Pid, Term};
use crate::{Error, Limits};

/// The most decimal digits an integer may have in JSON: what PostgreSQL's
/// `numeric` (and so `jsonb`) holds before the decimal point.
pub const MAX_INTEGER_DIGITS: usize = 131_072;

/// Writes `term` to `sink` as JSON, under the default [`Limits`].
pub fn write<S: JsonSink>(term: &Term<'_>, sink: &mut S) -> Result<(), S::Error> {
    write_with(term, sink, &Limits::default())
}

/// Writes `term` to `sink` as JSON under `limits`.
pub fn write_with<S: JsonSink>(
    term: &Term<'_>,
    sink: &mut S,
    limits: &Limits,
) -> Result<(), S::Error> {
    let mut writer = Writer {
        sink,
        max_depth: limits.max_depth,
        tasks: vec![Task::Term(term, 0)],
    };
    while let Some(task) = writer.tasks.pop() {
        writer.run(task)?;
    }
    Ok(())
}

/// One step of writing. Containers push their contents as tasks (in reverse),
/// so nesting costs heap, never native stack.
enum Task<'t, 'a> {
    Term(&'t Term<'a>, usize),
    BeginArray(usize),
    EndArray,
    BeginObject1,
    EndObject,
    Key(&'t str),
}

struct Writer<'s, 't, 'a, S> {
    sink: &'s mut S,
    max_depth: usize,
    tasks: Vec<Task<'t, 'a>>,
}

impl<'t, 'a, S: JsonSink> Writer<'_, 't, 'a, S> {
    fn run(&mut self, task: Task<'t, 'a>) -> Result<(), S::Error> {
        match task {
            Task::Term(term, depth) => self.term(term, depth),
            Task::BeginArray(len) => self.sink.begin_array(len),
            Task::EndArray => self.sink.end_array(),
            Task::BeginObject1 => self.sink.begin_object(1),
            Task::EndObject => self.sink.end_object(),
            Task::Key(key) => self.sink.key(key),
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, S::Error> {
        if depth >= self.max_depth {
            return Err(Error::TooDeep {
                limit: self.max_depth,
            }
            .into());
        }
        Ok(depth + 1)
    }

    /// `{"<tag>": ` … the payload follows, then `end_object`.
    fn begin_tag(&mut self, tag: &str) -> Result<(), S::Error> {
        self.sink.begin_object(1)?;
        self.sink.key(tag)
    }

    fn field_str(&mut self, key: &str, value: &str) -> Result<(), S::Error> {
        self.sink.key(key)?;
        self.sink.string(value)
    }

    /// An atom's name: a string, or `{"$binary": …}` when it contains NUL,
    /// which JSON consumers such as `jsonb` cannot store in a string.
    fn name(&mut self, name: &str) -> Result<(), S::Error> {
        if !name.contains('\0') {
            return self.sink.string(name);
        }
        self.begin_tag(tags::BINARY)?;
        self.sink.string(&BASE64.encode(name))?;
        self.sink.end_object()
    }

    fn field_name(&mut self, key: &str, name: &str) -> Result<(), S::Error> {
        self.sink.key(key)?;
        self.name(name)
    }

    fn field_int(&mut self, key: &str, value: i64) -> Result<(), S::Error> {
        self.sink.key(key)?;
        self.sink.int(value)
    }

    fn term(&mut self, term: &'t Term<'a>, depth: usize) -> Result<(), S::Error> {
        match term {
            Term::List(items) => self.array(items, None, depth),
            Term::ImproperList(items, tail) => self.array(items, Some(tail), depth),
            Term::Tuple(items) => {
                // A tuple is a level even when empty, unlike `[]`.
                self.deeper(depth)?;
                self.begin_tag(tags::TUPLE)?;
                self.tasks.push(Task::EndObject);
                self.array(items, None, depth)
            }
            Term::Map(entries) => self.map(entries, depth),
            Term::Closure(c) => {
                let depth = self.deeper(depth)?;
                self.begin_tag(tags::CLOSURE)?;
                self.sink.begin_object(8)?;
                self.field_name("module", &c.module)?;
                self.field_int("arity", i64::from(c.arity))?;
                self.field_str("uniq", &hex(&c.uniq))?;
                self.field_int("index", i64::from(c.index))?;
                self.field_int("old_index", c.old_index)?;
                self.field_int("old_uniq", c.old_uniq)?;
                self.sink.key("pid")?;
                self.pid(&c.pid)?;
                self.sink.key("free_vars")?;
                self.sink.begin_array(c.free_vars.len())?;
                self.tasks
                    .extend([Task::EndObject, Task::EndObject, Task::EndArray]);
                self.tasks
                    .extend(c.free_vars.iter().rev().map(|v| Task::Term(v, depth)));
                Ok(())
            }
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, term: &Term<'_>) -> Result<(), S::Error> {
        match term {
            Term::Atom(name) => match name.as_ref() {
                "true" => self.sink.bool(true),
                "false" => self.sink.bool(false),
                "nil" => self.sink.null(),
                _ => {
                    self.begin_tag(tags::ATOM)?;
                    self.name(name)?;
                    self.sink.end_object()
                }
            },
            Term::Int(i) => self.sink.int(*i),
            Term::BigInt(b) => self.sink.number(&big_to_decimal(b)?),
            Term::Float(f) => self.sink.number(&float_to_decimal(*f)?),
            Term::Binary(bytes) => match as_json_string(bytes) {
                Some(text) => self.sink.string(text),
                None => {
                    self.begin_tag(tags::BINARY)?;
                    self.sink.string(&BASE64.encode(bytes))?;
                    self.sink.end_object()
                }
            },
            Term::Bitstring(bits) => {
                self.begin_tag(tags::BITSTRING)?;
                self.sink.begin_object(2)?;
                self.field_str("base64", &BASE64.encode(&bits.bytes))?;
                self.field_int("bits", bits.bit_size() as i64)?;
                self.sink.end_object()?;
                self.sink.end_object()
            }
            Term::Pid(pid) => self.pid(pid),
            Term::Port(port) => {
                self.begin_tag(tags::PORT)?;
                self.sink.begin_object(3)?;
                self.field_name("node", &port.node)?;
                self.sink.key("id")?;
                match i64::try_from(port.id) {
                    Ok(id) => self.sink.int(id)?,
                    Err(_) => self.sink.number(itoa::Buffer::new().format(port.id))?,
                }
                self.field_int("creation", i64::from(port.creation))?;
                self.sink.end_object()?;
                self.sink.end_object()
            }
            Term::Reference(r) => {
                self.begin_tag(tags::REFERENCE)?;
                self.sink.begin_object(3)?;
                self.field_name("node", &r.node)?;
                self.field_int("creation", i64::from(r.creation))?;
                self.sink.key("id")?;
                self.sink.begin_array(r.id.len())?;
                for word in &r.id {
                    self.sink.int(i64::from(*word))?;
                }
                self.sink.end_array()?;
                self.sink.end_object()?;
                self.sink.end_object()
            }
            Term::ExternalFun(f) => {
                self.begin_tag(tags::FUN)?;
                self.sink.begin_object(3)?;
                self.field_name("module", &f.module)?;
                self.field_name("function", &f.function)?;
                self.field_int("arity", i64::from(f.arity))?;
                self.sink.end_object()?;
                self.sink.end_object()
            }
            Term::List(_)
            | Term::ImproperList(..)
            | Term::Tuple(_)
            | Term::Map(_)
            | Term::Closure(_) => {
                unreachable!("containers are written by term()")
            }
        }
    }

    fn pid(&mut self, pid: &Pid<'_>) -> Result<(), S::Error> {
        self.begin_tag(tags::PID)?;
        self.sink.begin_object(4)?;
        self.field_name("node", &pid.node)?;
        self.field_int("id", i64::from(pid.id))?;
        self.field_int("serial", i64::from(pid.serial))?;
        self.field_int("creation", i64::from(pid.creation))?;
        self.sink.end_object()?;
        self.sink.end_object()
    }

    fn array(
        &mut self,
        items: &'t [Term<'a>],
        tail: Option<&'t Term<'a>>,
        depth: usize,
    ) -> Result<(), S::Error> {
        // `[]` is a leaf, as in the ETF decoder.
        let depth = if items.is_empty() && tail.is_none() {
            depth
        } else {
            self.deeper(depth)?
        };
        self.sink
            .begin_array(items.len() + usize::from(tail.is_some()))?;
        self.tasks.push(Task::EndArray);
        if let Some(tail) = tail {
            // [e1, …, {"$tail": tail}]
            self.tasks.extend([
                Task::EndObject,
                Task::Term(tail, depth),
                Task::Key(tags::TAIL),
                Task::BeginObject1,
            ]);
        }
        self.tasks
            .extend(items.iter().rev().map(|item| Task::Term(item, depth)));
        Ok(())
    }

    /// Queues a map as a plain JSON object when every key is a binary that
    /// is a JSON string and no lone key reads as a tag; otherwise queues
    /// nothing and returns false. Validates each key once, allocates nothing.
    fn plain_object(&mut self, entries: &'t [(Term<'a>, Term<'a>)], depth: usize) -> bool {
        let mark = self.tasks.len();
        self.tasks.push(Task::EndObject);
        for (key, value) in entries.iter().rev() {
            let key = match key {
                Term::Binary(bytes) => as_json_string(bytes),
                _ => None,
            };
            match key {
                Some(key) if !(entries.len() == 1 && is_tag(key)) => {
                    self.tasks
                        .extend([Task::Term(value, depth), Task::Key(key)]);
                }
                _ => {
                    self.tasks.truncate(mark);
                    return false;
                }
            }
        }
        true
    }

    fn map(&mut self, entries: &'t [(Term<'a>, Term<'a>)], depth: usize) -> Result<(), S::Error> {
        let depth = self.deeper(depth)?;
        if self.plain_object(entries, depth) {
            return self.sink.begin_object(entries.len());
        }
        // {"$map": [[key, value], …]}
        self.begin_tag(tags::MAP)?;
        self.sink.begin_array(entries.len())?;
        self.tasks.extend([Task::EndObject, Task::EndArray]);
        for (key, value) in entries.iter().rev() {
            self.tasks.extend([
                Task::EndArray,
                Task::Term(value, depth),
                Task::Term(key, depth),
                Task::BeginArray(2),
            ]);
        }
        Ok(())
    }
}

/// A binary that can be a JSON string: UTF-8 with no NUL (which `jsonb`
/// cannot store).
fn as_json_string(bytes: &[u8]) -> Option<&str> {
    if is_ascii_without_nul(bytes) {
        // SAFETY: every byte is below 0x80, and ASCII text is valid UTF-8.
        // (The standard check walks short strings byte by byte, and most
        // keys and values are short ASCII: this is the codec's hot path.)
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Decimal text of a big integer, refusing sizes JSON consumers cannot hold.
fn big_to_decimal(value: &BigInt) -> Result<String, Error> {
    // 3.3219 bits per decimal digit: reject clearly oversized values before formatting.
    if value.bits() > (MAX_INTEGER_DIGITS as u64) * 3322 / 1000 + 4 {
        return Err(Error::IntegerTooLarge {
            limit: MAX_INTEGER_DIGITS,
        });
    }
    let text = value.to_string();
    if text.trim_start_matches('-').len() > MAX_INTEGER_DIGITS {
        return Err(Error::IntegerTooLarge {
            limit: MAX_INTEGER_DIGITS,
        });
    }
    Ok(text)
}

/// Positional decimal text with at least one fractional digit and the fewest
/// digits that read back as the same float: `7.0`, `0.1`, `1e300` as a 1
/// followed by 300 zeros and `.0`. Never an exponent, so that PostgreSQL's
/// `numeric` keeps the fraction and the value stays a float.
pub(crate) fn float_to_decimal(value: f64) -> Result<String, Error> {
    if !value.is_finite() {
        return Err(Error::NonFiniteFloat);
    }
    let mut text = value.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_check_agrees_with_the_obvious_one() {
        let mut inputs: Vec<Vec<u8>> =
            vec![vec![], b"plain ascii text, long enough for words".to_vec()];
        for len in 0..70 {
            for pos in 0..len {
                for bad in [0u8, 0x80, 0xff, 0x01, 0x7f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = bad;
                    inputs.push(bytes);
                }
            }
        }
        for bytes in inputs {
            let obvious = bytes.iter().all(|&b| b != 0 && b.is_ascii());
            assert_eq!(is_ascii_without_nul(&bytes), obvious, "{bytes:?}");
            let expected = if bytes.contains(&0) {
                None
            } else {
                std::str::from_utf8(&bytes).ok()
            };
            assert_eq!(as_json_string(&bytes), expected, "{bytes:?}");
        }
    }
}
