//! The Rustler NIF behind `ErlangCnode.Native`: the term ⇄ JSON mapping of
//! `docs/term-mapping.md`, implemented once in `erlang_cnode_codec`, for
//! Elixir code running on a node.
//!
//! Each Elixir module maps to one file here: [`term`] serves
//! `ErlangCnode.Term`. Every NIF answers `{:ok, value}` or
//! `{:error, {kind, message}}` with the codec's stable error kinds; none
//! panics on any input, and a panic would be raised as an Erlang error by
//! Rustler rather than crash the VM (the workspace profiles unwind).
#![warn(missing_docs)]

mod term;

rustler::init!("Elixir.ErlangCnode.Native");
