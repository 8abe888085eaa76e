//! Hostile input: every failure is a typed error; nothing panics, overflows
//! the stack or allocates what a length field claims.

use erlang_cnode_codec::{etf, json, Closure, Error, Limits, Pid, Term};

const MILLION: usize = 1_000_000;

#[test]
fn a_million_nested_tuples_is_an_error_not_a_stack_overflow() {
    let mut bytes = vec![131];
    for _ in 0..MILLION {
        bytes.extend_from_slice(&[104, 1]);
    }
    bytes.push(106);
    assert_eq!(
        etf::decode(&bytes).unwrap_err(),
        Error::TooDeep { limit: 1000 }
    );
}

#[test]
fn a_million_nested_lists_and_maps_are_errors() {
    let mut lists = vec![131];
    let mut maps = vec![131];
    for _ in 0..MILLION {
        lists.extend_from_slice(&[108, 0, 0, 0, 1]);
        maps.extend_from_slice(&[116, 0, 0, 0, 1, 97, 1]);
    }
    assert_eq!(etf::decode(&lists).unwrap_err().kind(), "too_deep");
    assert_eq!(etf::decode(&maps).unwrap_err().kind(), "too_deep");
}

#[test]
fn a_million_nested_json_arrays_and_objects_are_errors() {
    let arrays = "[".repeat(MILLION) + &"]".repeat(MILLION);
    assert_eq!(json::parse(&arrays).unwrap_err().kind(), "too_deep");
    let objects = r#"{"a":"#.repeat(MILLION) + "1" + &"}".repeat(MILLION);
    assert_eq!(json::parse(&objects).unwrap_err().kind(), "too_deep");
}

#[test]
fn depth_limit_is_exact_and_configurable() {
    let nested = |levels: usize| {
        let mut bytes = vec![131];
        for _ in 0..levels {
            bytes.extend_from_slice(&[104, 1]);
        }
        bytes.push(106);
        bytes
    };
    let at_limit = nested(1000);
    let term = etf::decode(&at_limit).unwrap();
    // What decodes also writes as JSON and parses back.
    let text = json::to_string(&term).unwrap();
    assert_eq!(json::parse(&text).unwrap(), term);
    assert_eq!(etf::encode(&term).unwrap(), at_limit);
    assert!(etf::decode(&nested(1001)).is_err());

    // The same, compressed (decoding it copies the tree out of the inflated buffer).
    let mut compressed = vec![131, 80];
    compressed.extend_from_slice(&((at_limit.len() - 1) as u32).to_be_bytes());
    compressed.extend_from_slice(&compress(&at_limit[1..]));
    assert_eq!(etf::decode(&compressed).unwrap(), term);

    let strict = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let mut decoder = etf::Decoder::new(&at_limit[..]).with_limits(strict);
    assert_eq!(
        decoder.next_term().unwrap_err(),
        Error::TooDeep { limit: 3 }
    );
}

#[test]
fn length_fields_are_not_trusted() {
    // Each claims 4 GiB of content that is not there.
    for bytes in [
        &[131, 108, 255, 255, 255, 255, 97, 1][..],
        &[131, 109, 255, 255, 255, 255, 1, 2, 3],
        &[131, 105, 255, 255, 255, 255, 97, 1],
        &[131, 116, 255, 255, 255, 255, 97, 1, 97, 2],
        &[131, 111, 255, 255, 255, 255, 0, 1],
        &[131, 77, 255, 255, 255, 255, 3, 1],
        &[131, 107, 255, 255, 1],
    ] {
        assert!(
            matches!(etf::decode(bytes).unwrap_err(), Error::UnexpectedEnd { .. }),
            "{bytes:?}"
        );
    }
}

#[test]
fn compressed_terms_are_bounded() {
    // A size field far beyond the limit is refused before inflating anything.
    assert_eq!(
        etf::decode(&[131, 80, 255, 255, 255, 255, 0x78, 0x9c]).unwrap_err(),
        Error::TooLarge { limit: 64 << 20 }
    );
    // A real stream whose size field lies either way is refused.
    let real = compress(&[97, 7]);
    let mut short = vec![131, 80, 0, 0, 0, 1];
    short.extend_from_slice(&real);
    assert_eq!(etf::decode(&short).unwrap_err().kind(), "invalid_etf");
    let mut long = vec![131, 80, 0, 0, 1, 0];
    long.extend_from_slice(&real);
    assert_eq!(etf::decode(&long).unwrap_err().kind(), "invalid_etf");
    let mut right = vec![131, 80, 0, 0, 0, 2];
    right.extend_from_slice(&real);
    assert_eq!(etf::decode(&right).unwrap(), Term::Int(7));
    // A bomb: 16 MiB of zeros in a small stream, under a 1 MiB limit.
    let bomb = compress(&vec![0u8; 16 << 20]);
    let mut bytes = vec![131, 80, 1, 0, 0, 0];
    bytes.extend_from_slice(&bomb);
    let limits = Limits {
        max_size: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        etf::Decoder::new(&bytes)
            .with_limits(limits)
            .next_term()
            .unwrap_err(),
        Error::TooLarge { limit: 1 << 20 }
    );
    // Garbage instead of zlib.
    assert_eq!(
        etf::decode(&[131, 80, 0, 0, 0, 2, 1, 2, 3, 4])
            .unwrap_err()
            .kind(),
        "invalid_etf"
    );
}

fn compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn every_truncation_of_a_rich_term_is_an_error() {
    let text = r#"{"$tuple":[{"$atom":"ünï"},[1,{"$tail":2}],{"$map":[[{"$atom":"k"},1.5]]},
        {"$pid":{"node":"a@b","id":1,"serial":2,"creation":3}},{"$binary":"/wA="},
        {"$bitstring":{"base64":"oA==","bits":3}},123456789012345678901234567890,
        {"$reference":{"node":"a@b","creation":1,"id":[1,2,3]}},{"$fun":{"module":"m","function":"f","arity":1}}]}"#;
    let bytes = etf::encode(&json::parse(text).unwrap()).unwrap();
    for end in 0..bytes.len() {
        assert!(
            etf::decode(&bytes[..end]).is_err(),
            "prefix of {end} bytes decoded"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        etf::decode(&trailing).unwrap_err(),
        Error::TrailingBytes { extra: 1 }
    );
    for end in 0..text.len() {
        if text.is_char_boundary(end) {
            assert!(
                json::parse(&text[..end]).is_err(),
                "JSON prefix of {end} bytes parsed"
            );
        }
    }
}

#[test]
fn etf_oddities() {
    // Latin-1 atom ('ünï' as ATOM_EXT), which eetf 0.11 rejects.
    assert_eq!(
        etf::decode(&[131, 100, 0, 3, 0xfc, b'n', 0xef]).unwrap(),
        Term::atom("ünï")
    );
    // Without the version byte.
    assert_eq!(
        etf::decode(&[115, 2, b'o', b'k']).unwrap(),
        Term::atom("ok")
    );
    // An atom cache reference with no distribution header.
    assert_eq!(
        etf::decode(&[131, 82, 0]).unwrap_err(),
        Error::AtomCacheMiss { index: 0 }
    );
    // NaN and infinity.
    let mut nan = vec![131, 70];
    nan.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
    assert_eq!(etf::decode(&nan).unwrap_err(), Error::NonFiniteFloat);
    // A map with a duplicate key.
    assert_eq!(
        etf::decode(&[131, 116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 1, 97, 3]).unwrap_err(),
        Error::DuplicateKey
    );
    // Unknown tag, bad big-integer sign, invalid UTF-8 atom, over-long atom.
    assert!(matches!(
        etf::decode(&[131, 1]).unwrap_err(),
        Error::UnknownTag { tag: 1, .. }
    ));
    assert_eq!(
        etf::decode(&[131, 110, 1, 2, 5]).unwrap_err().kind(),
        "invalid_etf"
    );
    assert_eq!(
        etf::decode(&[131, 119, 2, 0xc3, 0x28]).unwrap_err().kind(),
        "invalid_etf"
    );
    let mut long = vec![131, 118, 1, 0];
    long.extend_from_slice(&[b'x'; 256]);
    assert_eq!(etf::decode(&long).unwrap_err(), Error::AtomTooLong);
    // Old FLOAT_EXT text form.
    let mut old = vec![131, 99];
    old.extend_from_slice(format!("{:<31}", "1.50000000000000000000e+00").as_bytes());
    assert_eq!(etf::decode(&old).unwrap(), Term::Float(1.5));
    // [1 | [2]] written as nested LIST_EXTs is the proper list [1, 2].
    let nested = [131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106];
    assert_eq!(
        etf::decode(&nested).unwrap(),
        Term::List(vec![Term::Int(1), Term::Int(2)])
    );
    // An empty BIT_BINARY_EXT is <<>>, as OTP reads it; an empty one with
    // bits, or bits 0 with bytes, is refused, as OTP refuses it.
    assert_eq!(
        etf::decode(&[131, 77, 0, 0, 0, 0, 0]).unwrap(),
        Term::binary(vec![])
    );
    assert_eq!(
        etf::decode(&[131, 77, 0, 0, 0, 0, 3]).unwrap_err().kind(),
        "invalid_etf"
    );
    assert_eq!(
        etf::decode(&[131, 77, 0, 0, 0, 1, 0, 5])
            .unwrap_err()
            .kind(),
        "invalid_etf"
    );
    // A big integer small enough for i64 is canonicalised.
    assert_eq!(etf::decode(&[131, 110, 1, 1, 5]).unwrap(), Term::Int(-5));
}

#[test]
fn json_oddities() {
    let kind = |text: &str| json::parse(text).unwrap_err().kind();
    for bad in [
        "",
        " ",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "+1",
        "[1 2]",
        "{1:2}",
        "\"\\x\"",
        "\"unterminated",
        "\"\\ud800\"",
        "\"\\udc00x\"",
        "nul",
        "tru",
        "[] []",
        "\"tab\there\"",
        "NaN",
        "Infinity",
    ] {
        assert_eq!(kind(bad), "invalid_json", "{bad:?}");
    }
    assert_eq!(
        json::parse_bytes(b"\"\xff\"").unwrap_err().kind(),
        "invalid_json"
    );
    assert_eq!(kind(r#"{"a":1,"a":2}"#), "duplicate_key");
    let many: String = (0..20).map(|i| format!("\"k{i}\":{i},")).collect();
    assert_eq!(kind(&format!("{{{many}\"k7\":0}}")), "duplicate_key");
    assert_eq!(kind("1e400"), "non_finite_float");
    assert_eq!(kind(&"9".repeat(131_073)), "integer_too_large");
    assert!(json::parse(&"9".repeat(131_072)).is_ok());
    // Escapes, including a surrogate pair, decode to the characters.
    assert_eq!(
        json::parse(r#""\u00e9\ud83d\ude00\/\b""#).unwrap(),
        Term::binary("é😀/\u{8}".as_bytes().to_vec())
    );
}

#[test]
fn oversized_integers_cannot_be_written_as_json() {
    // A LARGE_BIG_EXT of 60,000 bytes has about 144,000 digits.
    let mut bytes = vec![131, 111, 0, 0, 234, 96, 0];
    bytes.extend(std::iter::repeat_n(0xffu8, 60_000));
    let term = etf::decode(&bytes).unwrap();
    assert_eq!(
        json::to_string(&term).unwrap_err().kind(),
        "integer_too_large"
    );
}

#[test]
fn the_eetf_bridge_stops_at_its_own_depth() {
    use erlang_cnode_codec::{from_eetf, to_eetf, EETF_MAX_DEPTH};
    let nest =
        |levels: usize| (0..levels).fold(Term::List(vec![]), |inner, _| Term::Tuple(vec![inner]));
    let ok = nest(EETF_MAX_DEPTH);
    assert_eq!(from_eetf(&to_eetf(&ok).unwrap()).unwrap(), ok);
    assert_eq!(
        to_eetf(&nest(EETF_MAX_DEPTH + 1)).unwrap_err(),
        Error::TooDeep {
            limit: EETF_MAX_DEPTH
        }
    );
    // A deep eetf term built by someone else is refused, not followed.
    let mut deep = eetf::Term::from(eetf::List::nil());
    for _ in 0..EETF_MAX_DEPTH + 1 {
        deep = eetf::Term::from(eetf::Tuple::from(vec![deep]));
    }
    assert_eq!(
        from_eetf(&deep).unwrap_err(),
        Error::TooDeep {
            limit: EETF_MAX_DEPTH
        }
    );
}

/// Maps whose keys are deep maps differing only at the bottom. Comparing
/// them once per level would take 2^200 steps; this must simply finish.
#[test]
fn deep_map_keys_compare_in_linear_time() {
    // Each level holds two keys, so that ordered and unordered comparison
    // paths are both exercised.
    let key = |v: u32| {
        (0..200).fold(v.to_string(), |inner, i| {
            format!(r#"{{"k{}":{inner},"a":1}}"#, i % 3)
        })
    };
    let text = format!(
        r#"{{"$map":[[{},1],[{},2],[{},3]]}}"#,
        key(2),
        key(1),
        key(3)
    );
    let term = json::parse(&text).unwrap();
    let bytes = etf::encode(&term).unwrap();
    assert_eq!(etf::decode(&bytes).unwrap(), term);
    assert_eq!(json::parse(&json::to_string(&term).unwrap()).unwrap(), term);
    // A repeated deep key is still found.
    let twice = format!(r#"{{"$map":[[{},1],[{},2]]}}"#, key(7), key(7));
    assert_eq!(json::parse(&twice).unwrap_err(), Error::DuplicateKey);
}

#[test]
fn maps_are_kept_in_canonical_key_order() {
    let term = json::parse(r#"{"b":1,"a":2,"aa":3}"#).unwrap();
    assert_eq!(json::to_string(&term).unwrap(), r#"{"a":2,"aa":3,"b":1}"#);
    let built = Term::map(vec![
        (Term::Int(2), Term::Int(0)),
        (Term::atom("x"), Term::Int(0)),
        (Term::Int(1), Term::Int(0)),
    ]);
    let Term::Map(entries) = built.unwrap() else {
        unreachable!()
    };
    let keys: Vec<_> = entries.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [Term::Int(1), Term::Int(2), Term::atom("x")]);
    assert_eq!(
        Term::map(vec![
            (Term::Int(1), Term::Int(0)),
            (Term::Int(1), Term::Int(1))
        ])
        .unwrap_err(),
        Error::DuplicateKey
    );
}

/// Decoding, encoding, writing JSON and parsing it back all accept exactly
/// the same terms: nesting of at most `max_depth` levels, where `[]` and
/// other scalars are leaves and every other list, tuple, map or closure is
/// one level.
#[test]
fn every_direction_agrees_on_depth() {
    type Wrap = fn(Term<'static>) -> Term<'static>;
    let wraps: [(&str, Wrap); 6] = [
        ("list", |t| Term::List(vec![t])),
        ("tuple", |t| Term::Tuple(vec![t])),
        ("map value", |t| {
            Term::map(vec![(Term::atom("a"), t)]).unwrap()
        }),
        ("map key", |t| Term::map(vec![(t, Term::Int(1))]).unwrap()),
        ("improper list", |t| {
            Term::ImproperList(vec![t], Box::new(Term::Int(1)))
        }),
        ("closure", |t| {
            let pid = Pid {
                node: "a@b".into(),
                id: 1,
                serial: 0,
                creation: 1,
            };
            let closure = Closure {
                module: "m".into(),
                arity: 0,
                uniq: [7; 16],
                index: 0,
                old_index: 0,
                old_uniq: 1,
                pid,
                free_vars: vec![t],
            };
            Term::Closure(Box::new(closure))
        }),
    ];
    // Leaves and their own depth.
    let leaves: [(Term<'static>, usize); 6] = [
        (Term::Int(7), 0),
        (Term::List(vec![]), 0),
        (
            json::parse(r#"{"$pid":{"node":"a@b","id":1,"serial":2,"creation":3}}"#)
                .unwrap()
                .into_owned(),
            0,
        ),
        (Term::List(vec![Term::Int(97), Term::Int(98)]), 1),
        (Term::Tuple(vec![]), 1),
        (Term::map(vec![]).unwrap(), 1),
    ];
    let limit = Limits::default().max_depth;
    for (name, wrap) in wraps {
        for (leaf, leaf_depth) in &leaves {
            let nest = |levels: usize| (0..levels).fold(leaf.clone(), |t, _| wrap(t));
            let fits = nest(limit - leaf_depth);
            let bytes =
                etf::encode(&fits).unwrap_or_else(|e| panic!("{name}/{leaf:?}: encode: {e}"));
            assert_eq!(
                etf::decode(&bytes).unwrap(),
                fits,
                "{name}/{leaf:?}: decode"
            );
            let text =
                json::to_string(&fits).unwrap_or_else(|e| panic!("{name}/{leaf:?}: write: {e}"));
            assert_eq!(
                json::parse(&text).unwrap_or_else(|e| panic!("{name}/{leaf:?}: parse: {e}")),
                fits
            );

            let too_deep = nest(limit - leaf_depth + 1);
            let expected = Error::TooDeep { limit };
            assert_eq!(
                etf::encode(&too_deep).unwrap_err(),
                expected,
                "{name}/{leaf:?}: encode"
            );
            assert_eq!(
                json::to_string(&too_deep).unwrap_err(),
                expected,
                "{name}/{leaf:?}: write"
            );
            // The same bytes and text, built without the writers' checks.
            let unlimited = Limits {
                max_depth: limit + 1,
                ..Limits::default()
            };
            let mut text = json::JsonText::new();
            json::write_with(&too_deep, &mut text, &unlimited).unwrap();
            assert_eq!(
                json::parse(&text.into_string()).unwrap_err(),
                expected,
                "{name}/{leaf:?}: parse"
            );
        }
    }
}
