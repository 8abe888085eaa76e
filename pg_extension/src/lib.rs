//! erlang_cnode: each PostgreSQL backend is a hidden Erlang node, so SQL
//! can call functions and gen_servers and send messages on Erlang and
//! Elixir nodes.
//!
//! The protocol lives in `erlang_cnode_node` (no SQL there) and the term
//! mapping in `erlang_cnode_codec`; this crate holds what PostgreSQL sees.

mod allow;
mod backend;
mod courier;
mod error;
mod functions;
mod guc;
mod jsonb;
mod latch;
mod log;
mod outbox;
mod registry;
mod requests;
mod server;
mod targets;
mod terms;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
mod worker;

::pgrx::pg_module_magic!(name, version);

// The functions, their grants and the role, written out as SQL.
::pgrx::extension_sql_file!("../sql/functions.sql", name = "functions", finalize);
// Delivery at commit: the queue, its view and functions.
::pgrx::extension_sql_file!(
    "../sql/outbox.sql",
    name = "outbox",
    requires = ["functions"]
);
// Reading terms, and exceptions as data.
::pgrx::extension_sql_file!(
    "../sql/terms.sql",
    name = "terms",
    requires = ["functions", "outbox"]
);

/// Registers the settings, the log hook, the `DISCARD ALL` hook and the
/// commit callback when the library loads; under `shared_preload_libraries`
/// also the workers' shared memory and their launcher.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
    log::init();
    backend::init();
    outbox::init();
    registry::init();
    worker::init();
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// One-off set-up before the tests.
    pub fn setup(_options: Vec<&str>) {}

    /// Settings the test cluster needs.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
