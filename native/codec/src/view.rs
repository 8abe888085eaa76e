//! Readable views of common term shapes, for SQL (`erlang_string`,
//! `erlang_proplist`, `erlang_record`): each either gives exactly what the
//! term holds in another shape, or says why the term is not of that shape.
//! Values inside a proplist or record keep the lossless mapping.

use std::borrow::Cow;

use crate::Term;

/// Why a term is not of the shape asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Not a charlist, iolist or binary.
    #[error("not a string: {0}")]
    NotAString(String),
    /// Not a proplist, keyword list or map with name keys.
    #[error("not a proplist: {0}")]
    NotAProplist(String),
    /// A key given twice.
    #[error("key \"{0}\" appears more than once")]
    DuplicateKey(String),
    /// Not a record of the fields given.
    #[error("not a record of {fields} fields: {why}")]
    NotARecord {
        /// How many fields were given.
        fields: usize,
        /// What is wrong.
        why: String,
    },
}

/// The text a charlist, an iolist or a binary stands for, as
/// `unicode:characters_to_binary/1` reads it: integers are code points,
/// binaries UTF-8, lists nest, an improper list may end in a binary.
pub fn string(term: &Term<'_>) -> Result<String, ViewError> {
    if !matches!(
        term,
        Term::List(_) | Term::ImproperList(..) | Term::Binary(_)
    ) {
        return Err(ViewError::NotAString(format!("{} found", kind(term))));
    }
    let mut out = String::new();
    chars(term, &mut out, 0)?;
    // SQL text cannot hold NUL.
    if out.contains('\0') {
        return Err(ViewError::NotAString(
            "it holds a NUL character, which text cannot".into(),
        ));
    }
    Ok(out)
}

/// Deeper than this, an iolist is refused (the codec's own limit is 1,000).
const MAX_DEPTH: usize = 1000;

fn chars(term: &Term<'_>, out: &mut String, depth: usize) -> Result<(), ViewError> {
    if depth > MAX_DEPTH {
        return Err(ViewError::NotAString("nested too deeply".into()));
    }
    match term {
        Term::Binary(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => out.push_str(text),
            Err(_) => return Err(ViewError::NotAString("a binary that is not UTF-8".into())),
        },
        Term::Int(i) => match u32::try_from(*i).ok().and_then(char::from_u32) {
            Some(c) => out.push(c),
            None => return Err(ViewError::NotAString(format!("{i} is not a character"))),
        },
        Term::List(items) => {
            for item in items {
                chars(item, out, depth + 1)?;
            }
        }
        Term::ImproperList(items, tail) => {
            for item in items {
                chars(item, out, depth + 1)?;
            }
            match tail.as_ref() {
                Term::Binary(_) => chars(tail, out, depth + 1)?,
                _ => {
                    return Err(ViewError::NotAString(
                        "an improper list that does not end in a binary".into(),
                    ))
                }
            }
        }
        other => return Err(ViewError::NotAString(format!("{} found", kind(other)))),
    }
    Ok(())
}

/// What kind of term `term` is, for error messages.
fn kind(term: &Term<'_>) -> &'static str {
    match term {
        Term::Atom(_) => "an atom",
        Term::Int(_) | Term::BigInt(_) => "an integer",
        Term::Float(_) => "a float",
        Term::Binary(_) => "a binary",
        Term::Bitstring(_) => "a bitstring",
        Term::List(_) => "a list",
        Term::ImproperList(..) => "an improper list",
        Term::Tuple(_) => "a tuple",
        Term::Map(_) => "a map",
        Term::Pid(_) => "a pid",
        Term::Port(_) => "a port",
        Term::Reference(_) => "a reference",
        Term::ExternalFun(_) | Term::Closure(_) => "a fun",
    }
}

/// A key as a name: an atom's name or a UTF-8 binary.
fn name<'a>(key: &'a Term<'_>) -> Option<Cow<'a, str>> {
    match key {
        Term::Atom(name) => Some(Cow::Borrowed(name.as_ref())),
        Term::Binary(bytes) => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        _ => None,
    }
}

/// A proplist (`[{Key, Value} | Atom]`, a bare atom meaning `{Atom, true}`
/// as `proplists` reads it), a keyword list, or a map with atom or binary
/// keys, as a map with binary keys (a JSON object in the mapping), in
/// order; the values are kept as they are.
pub fn proplist(term: &Term<'static>) -> Result<Term<'static>, ViewError> {
    let pairs: Vec<(Cow<'_, str>, Term<'static>)> = match term {
        Term::Map(entries) => entries
            .iter()
            .map(|(k, v)| match name(k) {
                Some(key) => Ok((key, v.clone())),
                None => Err(ViewError::NotAProplist(format!("{} as a key", kind(k)))),
            })
            .collect::<Result<_, _>>()?,
        Term::List(items) => items
            .iter()
            .map(|item| match item {
                Term::Tuple(pair) if pair.len() == 2 => match name(&pair[0]) {
                    Some(key) => Ok((key, pair[1].clone())),
                    None => Err(ViewError::NotAProplist(format!(
                        "{} as a key",
                        kind(&pair[0])
                    ))),
                },
                Term::Atom(flag) => Ok((Cow::Borrowed(flag.as_ref()), Term::atom("true"))),
                other => Err(ViewError::NotAProplist(format!(
                    "{} among the entries",
                    kind(other)
                ))),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(ViewError::NotAProplist(format!("{} found", kind(other)))),
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        if !seen.insert(key.to_string()) {
            return Err(ViewError::DuplicateKey(key.into_owned()));
        }
        // A key starting with $ would read as a tag of the mapping, not
        // as a plain object key.
        if key.starts_with('$') {
            return Err(ViewError::NotAProplist(format!(
                "key \"{key}\" starts with $, which a plain JSON object cannot hold"
            )));
        }
        entries.push((
            Term::Binary(Cow::Owned(key.into_owned().into_bytes())),
            value,
        ));
    }
    Ok(Term::Map(entries))
}

/// A record `{Tag, Field1, …}` as a map from `fields` (in order) to the
/// values; the tag is not kept (it names the record, which the caller
/// knows).
pub fn record(term: &Term<'static>, fields: &[String]) -> Result<Term<'static>, ViewError> {
    let not_a_record = |why: String| ViewError::NotARecord {
        fields: fields.len(),
        why,
    };
    let Term::Tuple(items) = term else {
        return Err(not_a_record(format!("{} found", kind(term))));
    };
    match items.first() {
        Some(Term::Atom(_)) => {}
        Some(other) => return Err(not_a_record(format!("its tag is {}", kind(other)))),
        None => return Err(not_a_record("an empty tuple".into())),
    }
    if items.len() != fields.len() + 1 {
        return Err(not_a_record(format!(
            "the tuple has {} elements after its tag",
            items.len() - 1
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::with_capacity(fields.len());
    for (field, value) in fields.iter().zip(&items[1..]) {
        if !seen.insert(field.as_str()) {
            return Err(ViewError::DuplicateKey(field.clone()));
        }
        entries.push((
            Term::Binary(Cow::Owned(field.clone().into_bytes())),
            value.clone(),
        ));
    }
    Ok(Term::Map(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(json: &str) -> Term<'static> {
        crate::json::parse(json).unwrap().into_owned()
    }

    fn json(term: &Term<'_>) -> String {
        crate::json::to_string(term).unwrap()
    }

    #[test]
    fn a_nested_iolist_is_its_text() {
        // io_lib:format("User ~s@~s successfully registered", ["alice", <<"example.org">>])
        let t = term(
            r#"[85,115,101,114,32,[97,108,105,99,101],64,"example.org",
                [32,115,117,99,99,101,115,115,102,117,108,108,121]]"#,
        );
        assert_eq!(string(&t).unwrap(), "User alice@example.org successfully");
        assert_eq!(string(&term(r#"[233, 8364]"#)).unwrap(), "é€");
        assert_eq!(string(&term(r#"[104, {"$tail": "i"}]"#)).unwrap(), "hi");
        assert_eq!(string(&term("[]")).unwrap(), "");
    }

    #[test]
    fn what_is_no_string_is_refused() {
        for bad in [
            r#"{"$atom": "ok"}"#,
            "[-1]",
            "42",
            "[104, 0, 105]",
            r#"{"$binary": "AA=="}"#,
            "[1114112]",
            r#"{"$binary": "/w=="}"#,
            r#"[104, {"$tail": 105}]"#,
            r#"{"$tuple": []}"#,
        ] {
            assert!(string(&term(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn proplists_keyword_lists_and_maps_become_objects() {
        let memory = term(
            r#"[{"$tuple": [{"$atom": "total"}, 100]}, {"$tuple": [{"$atom": "processes"}, 40]},
                {"$atom": "compact"}]"#,
        );
        assert_eq!(
            json(&proplist(&memory).unwrap()),
            r#"{"total":100,"processes":40,"compact":true}"#
        );
        let with_binary = term(r#"[{"$tuple": ["name", "ada"]}]"#);
        assert_eq!(json(&proplist(&with_binary).unwrap()), r#"{"name":"ada"}"#);
        let date = term(
            r#"{"$map": [[{"$atom": "__struct__"}, {"$atom": "Elixir.Date"}], [{"$atom": "year"}, 2026]]}"#,
        );
        assert_eq!(
            json(&proplist(&date).unwrap()),
            r#"{"__struct__":{"$atom":"Elixir.Date"},"year":2026}"#
        );
    }

    #[test]
    fn duplicate_and_odd_keys_are_refused() {
        let twice = term(r#"[{"$tuple": [{"$atom": "a"}, 1]}, {"$tuple": [{"$atom": "a"}, 2]}]"#);
        assert_eq!(proplist(&twice), Err(ViewError::DuplicateKey("a".into())));
        assert!(proplist(&term(r#"[{"$tuple": [1, 2]}]"#)).is_err());
        assert!(proplist(&term(r#"[{"$tuple": [{"$atom": "a"}, 1, 2]}]"#)).is_err());
        assert!(proplist(&term("42")).is_err());
    }

    #[test]
    fn a_record_takes_the_field_names_given() {
        let r = term(r#"{"$tuple": [{"$atom": "user"}, "ada", 36]}"#);
        let fields = ["name".to_owned(), "age".to_owned()];
        assert_eq!(
            json(&record(&r, &fields).unwrap()),
            r#"{"name":"ada","age":36}"#
        );
        assert!(record(&r, &fields[..1]).is_err());
        assert!(record(&term(r#"{"$tuple": [1, 2, 3]}"#), &fields).is_err());
        assert!(record(&term("[1, 2]"), &fields).is_err());
    }
}
