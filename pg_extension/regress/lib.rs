//! The SQL-level tests of the `erlang_cnode` extension. `tests/regress.rs`
//! runs each `sql/*.sql` with `psql` against a throwaway cluster and real
//! `erl` nodes and compares the output with `expected/*.out`; the other
//! tests drive what one psql script cannot (cancelling from another
//! session, the server log, delivery at commit in `tests/delivery.rs`).
//! This library holds what they share.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// This package's directory.
pub fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `erl/regress_server.erl`, compiled once per test binary into a
/// directory for `erl -pa`.
pub fn beam_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("erlang_cnode_regress_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("erlc")
            .arg("-o")
            .arg(&dir)
            .arg(here().join("erl/regress_server.erl"))
            .status()
            .expect("erlc runs");
        assert!(status.success(), "erlc failed");
        dir
    })
}
