//! Terms written as Erlang writes them with `io_lib:format("~p", [T])` on
//! one line, for error messages and `erlang_text`:
//! `{undef,[{nosuch,f,[],[]}]}`, printable charlists as strings
//! (`{file,"lib/enum.ex"}`). Long output is cut at a limit and ends in
//! `...`.

use std::fmt::Write;

use crate::Term;

/// `term` in Erlang syntax, at most about `limit` bytes (then ending `...`).
pub fn to_erlang_text(term: &Term<'_>, limit: usize) -> String {
    let mut out = String::new();
    write_term(term, &mut out, limit);
    if out.len() > limit {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

fn write_term(term: &Term<'_>, out: &mut String, limit: usize) {
    if out.len() > limit {
        return;
    }
    match term {
        Term::Atom(name) => write_atom(name, out),
        Term::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Term::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Term::Float(f) => write_float(*f, out),
        Term::Binary(bytes) => write_bits(bytes, 8, out),
        Term::Bitstring(b) => write_bits(&b.bytes, b.tail_bits, out),
        Term::List(items) if is_printable(items) => write_string(items, out),
        Term::List(items) => {
            out.push('[');
            write_seq(items, out, limit);
            out.push(']');
        }
        Term::ImproperList(items, tail) => {
            out.push('[');
            write_seq(items, out, limit);
            out.push('|');
            write_term(tail, out, limit);
            out.push(']');
        }
        Term::Tuple(items) => {
            out.push('{');
            write_seq(items, out, limit);
            out.push('}');
        }
        Term::Map(entries) => {
            out.push_str("#{");
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if out.len() > limit {
                    return;
                }
                write_term(key, out, limit);
                out.push_str(" => ");
                write_term(value, out, limit);
            }
            out.push('}');
        }
        Term::Pid(p) => {
            let _ = write!(out, "<{}.{}.{}>", p.node, p.id, p.serial);
        }
        Term::Port(p) => {
            let _ = write!(out, "#Port<{}.{}>", p.node, p.id);
        }
        Term::Reference(r) => {
            let _ = write!(out, "#Ref<{}", r.node);
            for word in r.id.iter().rev() {
                let _ = write!(out, ".{word}");
            }
            out.push('>');
        }
        Term::ExternalFun(f) => {
            out.push_str("fun ");
            write_atom(&f.module, out);
            out.push(':');
            write_atom(&f.function, out);
            let _ = write!(out, "/{}", f.arity);
        }
        Term::Closure(c) => {
            let _ = write!(out, "#Fun<{}.{}.{}>", c.module, c.index, c.old_uniq);
        }
    }
}

/// Whether `~p` prints the list as a string: not empty, and every element
/// a printable character (`io_lib:printable_list/1` in the default latin1
/// range).
fn is_printable(items: &[Term<'_>]) -> bool {
    !items.is_empty()
        && items.iter().all(|item| match item {
            Term::Int(c) => printable(*c),
            _ => false,
        })
}

/// A printable list as `~p` writes it: `"text"`, with escapes.
fn write_string(items: &[Term<'_>], out: &mut String) {
    write_chars(
        items.iter().filter_map(|item| match item {
            Term::Int(c) => Some(*c),
            _ => None,
        }),
        out,
    );
}

/// Printable characters as `~p` writes them in a string: `"text"`.
fn write_chars(chars: impl Iterator<Item = i64>, out: &mut String) {
    out.push('"');
    for c in chars {
        match c {
            34 => out.push_str("\\\""),
            92 => out.push_str("\\\\"),
            10 => out.push_str("\\n"),
            13 => out.push_str("\\r"),
            9 => out.push_str("\\t"),
            11 => out.push_str("\\v"),
            8 => out.push_str("\\b"),
            12 => out.push_str("\\f"),
            27 => out.push_str("\\e"),
            c => out.push(char::from_u32(c as u32).unwrap_or('?')),
        }
    }
    out.push('"');
}

fn write_seq(items: &[Term<'_>], out: &mut String, limit: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if out.len() > limit {
            return;
        }
        write_term(item, out, limit);
    }
}

/// Atoms that need no quotes, as `io_lib` decides: a lower-case letter
/// (latin1 ones too), then letters, digits, `_` and `@`, and not a
/// reserved word.
fn write_atom(name: &str, out: &mut String) {
    const RESERVED: &[&str] = &[
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
        "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
        "rem", "try", "when", "xor", "maybe", "else",
    ];
    let mut chars = name.chars();
    let lower = |c: char| c.is_ascii_lowercase() || matches!(c, 'ß'..='ÿ') && c != '÷';
    let upper = |c: char| c.is_ascii_uppercase() || matches!(c, 'À'..='Þ') && c != '×';
    let plain = chars.next().is_some_and(lower)
        && chars.all(|c| lower(c) || upper(c) || c.is_ascii_digit() || c == '_' || c == '@')
        && !RESERVED.contains(&name);
    if plain {
        out.push_str(name);
        return;
    }
    out.push('\'');
    for c in name.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Floats always show a fraction or an exponent, as Erlang prints them.
fn write_float(f: f64, out: &mut String) {
    let shortest = format!("{f:?}");
    match shortest.split_once('e') {
        Some((mantissa, exponent)) if !mantissa.contains('.') => {
            let _ = write!(out, "{mantissa}.0e{exponent}");
        }
        _ => out.push_str(&shortest),
    }
}

/// Whether `~p` prints character `c` in a string (the default latin1
/// range of `io_lib:printable_list/1`, with the escapes it knows).
fn printable(c: i64) -> bool {
    matches!(c, 32..=126 | 160..=255 | 8..=13 | 27)
}

/// Binaries as `<<"text">>` when every byte is a printable latin1
/// character (as `~p` shows them), else `<<1,2,3>>`; a bitstring's last
/// byte carries its size: `<<5:3>>`.
fn write_bits(bytes: &[u8], tail_bits: u8, out: &mut String) {
    out.push_str("<<");
    let whole = if tail_bits == 8 || bytes.is_empty() {
        bytes
    } else {
        &bytes[..bytes.len() - 1]
    };
    if !whole.is_empty() && whole.iter().all(|&b| printable(i64::from(b))) {
        write_chars(whole.iter().map(|&b| i64::from(b)), out);
    } else {
        for (i, b) in whole.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{b}");
        }
    }
    if tail_bits != 8 && !bytes.is_empty() {
        if !whole.is_empty() {
            out.push(',');
        }
        let last = bytes[bytes.len() - 1] >> (8 - tail_bits);
        let _ = write!(out, "{last}:{tail_bits}");
    }
    out.push_str(">>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: &str) -> String {
        to_erlang_text(&crate::json::parse(json).unwrap(), 1000)
    }

    #[test]
    fn writes_as_erlang_does() {
        assert_eq!(
            text(
                r#"{"$tuple": [{"$atom": "undef"}, [{"$tuple": [{"$atom": "nosuch"}, {"$atom": "f"}, [], []]}]]}"#
            ),
            "{undef,[{nosuch,f,[],[]}]}"
        );
        assert_eq!(text(r#"{"$atom": "Hello world"}"#), "'Hello world'");
        assert_eq!(text(r#"{"$atom": "end"}"#), "'end'");
        assert_eq!(text(r#"{"$atom": "it's"}"#), r"'it\'s'");
        assert_eq!(text(r#""abc""#), r#"<<"abc">>"#);
        assert_eq!(text(r#"{"$binary": "/wA="}"#), "<<255,0>>");
        assert_eq!(
            text(r#"{"$bitstring": {"base64": "oA==", "bits": 3}}"#),
            "<<5:3>>"
        );
        assert_eq!(text(r#"[1, 2, {"$tail": 3}]"#), "[1,2|3]");
        assert_eq!(text(r#"{"a": 1.5}"#), r#"#{<<"a">> => 1.5}"#);
        assert_eq!(text("1e300"), "1.0e300");
        assert_eq!(text("null"), "nil");
    }

    #[test]
    fn printable_charlists_are_strings_as_p_writes_them() {
        assert_eq!(
            text(
                r#"{"$tuple": [{"$atom": "file"}, [108, 105, 98, 47, 101, 110, 117, 109, 46, 101, 120]]}"#
            ),
            r#"{file,"lib/enum.ex"}"#
        );
        assert_eq!(text("[34, 92, 10, 233]"), r#""\"\\\né""#);
        // Not printable: a list with a control character, or a code point
        // past latin1, or an empty list.
        assert_eq!(text("[1, 2, 3]"), "[1,2,3]");
        assert_eq!(text("[104, 8364]"), "[104,8364]");
        assert_eq!(text("[]"), "[]");
    }

    #[test]
    fn binaries_and_atoms_as_p_writes_them() {
        // io_lib:format("~p", [<<"a\rb">>]), [<<233>>], ['é'], ['ñandú'], ['Él']
        assert_eq!(text(r#"{"$binary": "YQ1i"}"#), r#"<<"a\rb">>"#);
        assert_eq!(text(r#"{"$binary": "6Q=="}"#), r#"<<"é">>"#);
        assert_eq!(text(r#"{"$atom": "é"}"#), "é");
        assert_eq!(text(r#"{"$atom": "ñandú"}"#), "ñandú");
        assert_eq!(text(r#"{"$atom": "Él"}"#), "'Él'");
        assert_eq!(text(r#"{"$binary": "AQI="}"#), "<<1,2>>");
    }

    #[test]
    fn long_output_is_cut() {
        let long = to_erlang_text(&Term::List((0..10_000).map(Term::Int).collect()), 50);
        assert!(long.len() <= 53 && long.ends_with("..."), "{long}");
    }
}
