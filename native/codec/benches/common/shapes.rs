//! The three inputs both benchmarks use.

use erlang_cnode_codec::Term;

/// `(name, term)` for each benchmark input.
pub fn all() -> [(&'static str, Term<'static>); 3] {
    [
        ("map_1kb", map_of_strings()),
        ("tuples_100kb", list_of_tuples()),
        ("binary_1mb", binary_1mb()),
    ]
}

fn map_of_strings() -> Term<'static> {
    let entries = (0..24)
        .map(|i| {
            (
                Term::binary(format!("key_{i:02}").into_bytes()),
                Term::binary(format!("value number {i:04} ok").into_bytes()),
            )
        })
        .collect();
    Term::Map(entries)
}

fn list_of_tuples() -> Term<'static> {
    let items = (0..2600)
        .map(|i| {
            Term::Tuple(vec![
                Term::atom("row"),
                Term::Int(i),
                Term::binary(format!("name-{i}").into_bytes()),
                Term::Float(i as f64 / 7.0),
            ])
        })
        .collect();
    Term::List(items)
}

fn binary_1mb() -> Term<'static> {
    Term::binary(
        (0..1 << 20)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 "[i % 37])
            .collect::<Vec<u8>>(),
    )
}
