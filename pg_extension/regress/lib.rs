//! Nothing to link: this package holds the SQL-level tests of the
//! `erlang_cnode` extension. `tests/regress.rs` runs each `sql/*.sql` with
//! `psql` against a throwaway cluster and real `erl` nodes and compares the
//! output with `expected/*.out`; the other tests drive what one psql script
//! cannot (cancelling from another session, the server log).
