//! Every row of `docs/term-mapping.md`, both ways.

use std::borrow::Cow;

use erlang_cnode_codec::{json, Bitstring, Error, ExternalFun, Pid, Term};
use num_bigint::BigInt;

fn bin(s: &str) -> Term<'static> {
    Term::Binary(Cow::Owned(s.as_bytes().to_vec()))
}

/// `term` writes exactly `text`, and `text` parses back to `term`.
fn both_ways(term: Term<'_>, text: &str) {
    assert_eq!(json::to_string(&term).unwrap(), text, "term → JSON");
    assert_eq!(json::parse(text).unwrap(), term, "JSON → term for {text}");
}

#[test]
fn plain_json_is_what_an_elixir_developer_expects() {
    both_ways(
        Term::Map(vec![(bin("a"), Term::Int(1)), (bin("b"), bin("x"))]),
        r#"{"a":1,"b":"x"}"#,
    );
    both_ways(
        Term::List(vec![
            Term::Int(1),
            Term::List(vec![Term::Int(2), Term::List(vec![])]),
        ]),
        "[1,[2,[]]]",
    );
    both_ways(bin("héllo \"quoted\"\n"), r#""héllo \"quoted\"\n""#);
    both_ways(Term::Int(-7), "-7");
    both_ways(Term::atom("true"), "true");
    both_ways(Term::atom("false"), "false");
    both_ways(Term::atom("nil"), "null");
    both_ways(Term::Float(2.5), "2.5");
    both_ways(Term::Float(7.0), "7.0");
    assert_eq!(json::parse("1e3").unwrap(), Term::Float(1000.0));
    assert_eq!(json::parse("-0.5E-1").unwrap(), Term::Float(-0.05));
}

#[test]
fn integers_are_exact_at_any_size() {
    let big: BigInt = "123456789012345678901234567890".parse().unwrap();
    both_ways(Term::BigInt(big), "123456789012345678901234567890");
    both_ways(Term::Int(i64::MAX), "9223372036854775807");
    both_ways(Term::Int(i64::MIN), "-9223372036854775808");
    // 2^53 + 1 is where a detour through f64 would lose a unit.
    both_ways(Term::Int(9_007_199_254_740_993), "9007199254740993");
    let past_i64: BigInt = BigInt::from(i64::MAX) + 1;
    both_ways(Term::BigInt(past_i64), "9223372036854775808");
    // Canonical: a 19-digit number that fits i64 is an Int, not a BigInt.
    assert_eq!(
        json::parse("1000000000000000000").unwrap(),
        Term::Int(1_000_000_000_000_000_000)
    );
}

#[test]
fn floats_keep_their_fraction_and_never_use_exponents() {
    let text = json::to_string(&Term::Float(1.0e300)).unwrap();
    assert_eq!(text.len(), 303);
    assert!(text.starts_with('1') && text.ends_with(".0"));
    assert_eq!(json::parse(&text).unwrap(), Term::Float(1.0e300));
    let tiny = json::to_string(&Term::Float(5.0e-324)).unwrap();
    assert!(tiny.starts_with("0.000") && tiny.ends_with('5'));
    assert_eq!(json::parse(&tiny).unwrap(), Term::Float(5.0e-324));
    both_ways(Term::Float(0.1), "0.1");
    both_ways(Term::Float(-123.456), "-123.456");
}

#[test]
fn atoms_and_tuples() {
    both_ways(Term::atom("ok"), r#"{"$atom":"ok"}"#);
    both_ways(Term::atom("ünï"), r#"{"$atom":"ünï"}"#);
    both_ways(Term::atom("null"), r#"{"$atom":"null"}"#);
    both_ways(
        Term::Tuple(vec![Term::atom("ok"), Term::Int(1)]),
        r#"{"$tuple":[{"$atom":"ok"},1]}"#,
    );
    both_ways(Term::Tuple(vec![]), r#"{"$tuple":[]}"#);
}

#[test]
fn binaries_and_bitstrings() {
    both_ways(Term::binary(vec![255u8, 0]), r#"{"$binary":"/wA="}"#);
    both_ways(
        Term::binary(b"nul\0inside".to_vec()),
        r#"{"$binary":"bnVsAGluc2lkZQ=="}"#,
    );
    both_ways(
        Term::Bitstring(Bitstring {
            bytes: Cow::Owned(vec![0xa0]),
            tail_bits: 3,
        }),
        r#"{"$bitstring":{"base64":"oA==","bits":3}}"#,
    );
    // Bits past the size in hand-written input would be lost: refused, not
    // changed. A whole number of bytes is a binary.
    assert!(json::parse(r#"{"$bitstring":{"bits":3,"base64":"vw=="}}"#).is_err());
    assert!(json::parse(r#"{"$bitstring":{"bits":3,"base64":"/w=="}}"#).is_err());
    assert_eq!(
        json::parse(r#"{"$bitstring":{"bits":8,"base64":"vw=="}}"#).unwrap(),
        Term::binary(vec![0xbf])
    );
}

#[test]
fn pids_ports_and_references_need_a_node() {
    for empty in [
        r#"{"$pid":{"node":"","id":1,"serial":0,"creation":0}}"#,
        r#"{"$port":{"node":"","id":1,"creation":0}}"#,
        r#"{"$reference":{"node":"","creation":0,"id":[1]}}"#,
    ] {
        assert!(json::parse(empty).is_err(), "{empty}");
    }
}

#[test]
fn nul_never_appears_in_a_json_string() {
    // jsonb cannot store \u0000: binaries, keys and names holding NUL use $binary.
    assert_eq!(
        json::parse(r#""a\u0000b""#).unwrap_err().kind(),
        "invalid_json"
    );
    both_ways(Term::atom("a\0b"), r#"{"$atom":{"$binary":"YQBi"}}"#);
    both_ways(
        Term::Map(vec![(Term::binary(b"k\0".to_vec()), Term::Int(1))]),
        r#"{"$map":[[{"$binary":"awA="},1]]}"#,
    );
    let pid = Pid {
        node: "n\0@h".into(),
        id: 1,
        serial: 2,
        creation: 3,
    };
    both_ways(
        Term::Pid(Box::new(pid)),
        r#"{"$pid":{"node":{"$binary":"bgBAaA=="},"id":1,"serial":2,"creation":3}}"#,
    );
    let fun = ExternalFun {
        module: "m\0".into(),
        function: "f".into(),
        arity: 0,
    };
    both_ways(
        Term::ExternalFun(Box::new(fun)),
        r#"{"$fun":{"module":{"$binary":"bQA="},"function":"f","arity":0}}"#,
    );
}

#[test]
fn maps_with_other_keys() {
    both_ways(
        Term::Map(vec![(Term::atom("a"), Term::Int(1))]),
        r#"{"$map":[[{"$atom":"a"},1]]}"#,
    );
    both_ways(
        Term::Map(vec![(bin("$atom"), Term::Int(1))]),
        r#"{"$map":[["$atom",1]]}"#,
    );
    // Two keys, one of them a tag name: a plain object.
    both_ways(
        Term::Map(vec![(bin("$atom"), Term::Int(1)), (bin("b"), Term::Int(2))]),
        r#"{"$atom":1,"b":2}"#,
    );
    // JSON Schema's $ref is not a tag.
    both_ways(
        Term::Map(vec![(bin("$ref"), bin("#/x"))]),
        r##"{"$ref":"#/x"}"##,
    );
    both_ways(Term::Map(vec![]), "{}");
}

#[test]
fn lists_charlists_and_improper_lists() {
    both_ways(
        Term::List(vec![Term::Int(97), Term::Int(98), Term::Int(99)]),
        "[97,98,99]",
    );
    both_ways(
        Term::ImproperList(vec![Term::Int(1), Term::Int(2)], Box::new(Term::Int(3))),
        r#"[1,2,{"$tail":3}]"#,
    );
}

#[test]
fn pids_ports_references_funs() {
    let pid = Pid {
        node: "a@host".into(),
        id: 83,
        serial: 0,
        creation: 1_700_000_000,
    };
    both_ways(
        Term::Pid(Box::new(pid.clone())),
        r#"{"$pid":{"node":"a@host","id":83,"serial":0,"creation":1700000000}}"#,
    );
    // Field order does not matter.
    assert_eq!(
        json::parse(r#"{"$pid":{"creation":1700000000,"serial":0,"node":"a@host","id":83}}"#)
            .unwrap(),
        Term::Pid(Box::new(pid))
    );
    both_ways(
        json::parse(r#"{"$port":{"node":"a@host","id":5,"creation":1}}"#).unwrap(),
        r#"{"$port":{"node":"a@host","id":5,"creation":1}}"#,
    );
    both_ways(
        json::parse(r#"{"$port":{"node":"a@host","id":18446744073709551615,"creation":1}}"#)
            .unwrap(),
        r#"{"$port":{"node":"a@host","id":18446744073709551615,"creation":1}}"#,
    );
    both_ways(
        json::parse(r#"{"$reference":{"node":"a@host","creation":1,"id":[1,2,3]}}"#).unwrap(),
        r#"{"$reference":{"node":"a@host","creation":1,"id":[1,2,3]}}"#,
    );
    both_ways(
        Term::ExternalFun(Box::new(ExternalFun {
            module: "lists".into(),
            function: "map".into(),
            arity: 2,
        })),
        r#"{"$fun":{"module":"lists","function":"map","arity":2}}"#,
    );
}

#[test]
fn closures_round_trip() {
    let text = concat!(
        r#"{"$closure":{"module":"my_mod","arity":1,"uniq":"000102030405060708090a0b0c0d0e0f","index":3,"#,
        r#""old_index":3,"old_uniq":91234567,"pid":{"$pid":{"node":"a@host","id":83,"serial":0,"creation":1}},"#,
        r#""free_vars":[1,"captured"]}}"#
    );
    let term = json::parse(text).unwrap();
    assert!(matches!(&term, Term::Closure(c) if c.uniq[15] == 15 && c.free_vars.len() == 2));
    assert_eq!(json::to_string(&term).unwrap(), text);
}

#[test]
fn bad_tagged_forms_are_typed_errors() {
    let kind = |text: &str| json::parse(text).unwrap_err().kind();
    assert_eq!(kind(r#"{"$atom": 1}"#), "invalid_tag");
    assert_eq!(kind(r#"{"$tuple": {"a": 1}}"#), "invalid_tag");
    assert_eq!(kind(r#"{"$binary": "not base64!"}"#), "invalid_tag");
    assert_eq!(kind(r#"{"$map": [[1]]}"#), "invalid_tag");
    assert_eq!(kind(r#"{"$map": [[1, 2], [1, 3]]}"#), "duplicate_key");
    assert_eq!(
        kind(r#"{"$pid": {"node": "a@b", "id": 1, "serial": 0}}"#),
        "invalid_tag"
    );
    assert_eq!(
        kind(r#"{"$pid": {"node": "a@b", "id": -1, "serial": 0, "creation": 1}}"#),
        "invalid_tag"
    );
    assert_eq!(
        kind(r#"{"$pid": {"node": "a@b", "id": 4294967296, "serial": 0, "creation": 1}}"#),
        "invalid_tag"
    );
    assert_eq!(
        kind(r#"{"$reference": {"node": "a@b", "creation": 1, "id": []}}"#),
        "invalid_tag"
    );
    assert_eq!(
        kind(r#"{"$bitstring": {"base64": "oA==", "bits": 9}}"#),
        "invalid_tag"
    );
    assert_eq!(kind(r#"[{"$tail": 1}]"#), "invalid_tag");
    assert_eq!(kind(r#"[1, {"$tail": 2}, 3]"#), "invalid_tag");
    assert_eq!(kind(r#"[1, {"$tail": [2]}]"#), "invalid_tag");
    assert_eq!(kind(r#"{"$tail": 1}"#), "invalid_tag");
    assert_eq!(kind(r#"{"a": {"$tail": 1}}"#), "invalid_tag");
    let long = format!(r#"{{"$atom": "{}"}}"#, "x".repeat(256));
    assert_eq!(json::parse(&long).unwrap_err(), Error::AtomTooLong);
    let ok = format!(r#"{{"$atom": "{}"}}"#, "é".repeat(255));
    assert!(json::parse(&ok).is_ok());
}
