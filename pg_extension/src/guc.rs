//! The `erlang_cnode.*` settings, registered from `_PG_init` with the
//! prefix reserved (so a misspelt `erlang_cnode.call_timout` is an error).
//!
//! None holds a secret: a custom setting is readable by every role before
//! the library loads, and `ALTER ROLE/DATABASE … SET` values by everyone in
//! `pg_db_role_setting`. Cookies live in user mappings (`server.rs`).
//! Settings that choose identity or resources are for superusers (who can
//! `GRANT SET ON PARAMETER` them to others on PostgreSQL 15 and later), so
//! no role can widen what a superuser or a server allows.

use std::ffi::CString;
use std::time::Duration;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

static CONNECT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5_000);
static CALL_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(30_000);
static MAX_MESSAGE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024);
static NODE_PREFIX: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
static NODE_HOST: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MAX_CONNECTIONS: GucSetting<i32> = GucSetting::<i32>::new(64);
static MAX_IN_FLIGHT: GucSetting<i32> = GucSetting::<i32>::new(1000);
static DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
static KEY_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(3600);
static MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(20);
static RETRY_DELAY: GucSetting<i32> = GucSetting::<i32>::new(1_000);
static RETRY_MAX_DELAY: GucSetting<i32> = GucSetting::<i32>::new(600_000);
static DELIVERY_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// Registers every setting. Called once, from `_PG_init`.
pub fn init() {
    GucRegistry::define_int_guc(
        c"erlang_cnode.connect_timeout",
        c"How long connecting to a node (EPMD lookup and handshake) may take.",
        c"",
        &CONNECT_TIMEOUT,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.call_timeout",
        c"How long a call waits for its reply unless it passes timeout_ms.",
        c"After a timeout the function's process on the node is killed, as on a cancel.",
        &CALL_TIMEOUT,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.max_message_size",
        c"The largest message accepted from a node.",
        c"A larger reply is an error and the connection is closed.",
        &MAX_MESSAGE_SIZE,
        1,
        1024 * 1024,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_string_guc(
        c"erlang_cnode.node_prefix",
        c"First part of this backend's node name: <prefix>_<pid>_<random>@<host>.",
        c"Read when the backend first connects to a node.",
        &NODE_PREFIX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"erlang_cnode.node_host",
        c"Host part of this backend's node name.",
        c"Empty means automatic: the short host name towards nodes started with -sname, \
          and the local IP address of the connection towards nodes started with -name. \
          Read when the backend first connects to a node.",
        &NODE_HOST,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.max_connections",
        c"The most connections to nodes one backend holds at once.",
        c"Each is a file descriptor of the backend; past the limit, connecting is an error.",
        &MAX_CONNECTIONS,
        1,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.max_in_flight",
        c"The most calls one backend has under way at once.",
        c"erlang_call_async, erlang_call_many and erlang_multicall wait for room past it.",
        &MAX_IN_FLIGHT,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    delivery_settings();
    // SAFETY: called from _PG_init, in the backend's only thread.
    #[cfg(not(feature = "pg14"))]
    unsafe {
        pg_sys::MarkGUCPrefixReserved(c"erlang_cnode".as_ptr())
    };
    // Before PostgreSQL 15 a misspelt setting is only warned about.
    #[cfg(feature = "pg14")]
    unsafe {
        pg_sys::EmitWarningsOnPlaceholders(c"erlang_cnode".as_ptr())
    };
}

/// The background worker's settings (docs/delivery.md): read again on
/// a reload (`SIGHUP`).
fn delivery_settings() {
    GucRegistry::define_string_guc(
        c"erlang_cnode.databases",
        c"The databases whose messages queued at commit a background worker delivers.",
        c"A comma-separated list; each needs the extension. Only used when erlang_cnode is \
          in shared_preload_libraries.",
        &DATABASES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.key_retention",
        c"How long a delivered message is kept: its key stays taken, and erlang_outbox shows it.",
        c"",
        &KEY_RETENTION,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.max_attempts",
        c"How often a message is tried before it is dead.",
        c"",
        &MAX_ATTEMPTS,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.retry_delay",
        c"How long after its first failed attempt a message is tried again; doubled each time.",
        c"",
        &RETRY_DELAY,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.retry_max_delay",
        c"The longest wait between two attempts at a message.",
        c"",
        &RETRY_MAX_DELAY,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"erlang_cnode.delivery_timeout",
        c"How long the worker waits for acknowledgements and casts before it counts a failed attempt.",
        c"",
        &DELIVERY_TIMEOUT,
        1,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

/// `erlang_cnode.databases`, as names.
pub fn databases() -> Vec<String> {
    text(&DATABASES)
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// `erlang_cnode.key_retention`.
pub fn key_retention() -> Duration {
    Duration::from_secs(KEY_RETENTION.get().max(0) as u64)
}

/// `erlang_cnode.max_attempts`.
pub fn max_attempts() -> i32 {
    MAX_ATTEMPTS.get().max(1)
}

/// `erlang_cnode.retry_delay` and `erlang_cnode.retry_max_delay`.
pub fn retry_delays() -> (Duration, Duration) {
    (
        Duration::from_millis(RETRY_DELAY.get().max(1) as u64),
        Duration::from_millis(RETRY_MAX_DELAY.get().max(1) as u64),
    )
}

/// `erlang_cnode.delivery_timeout`.
pub fn delivery_timeout() -> Duration {
    Duration::from_millis(DELIVERY_TIMEOUT.get().max(1) as u64)
}

fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.is_empty())
}

/// `erlang_cnode.max_in_flight`.
pub fn max_in_flight() -> usize {
    MAX_IN_FLIGHT.get().max(1) as usize
}

/// `erlang_cnode.max_connections`.
pub fn max_connections() -> usize {
    MAX_CONNECTIONS.get().max(1) as usize
}

/// `erlang_cnode.connect_timeout`.
pub fn connect_timeout() -> Duration {
    Duration::from_millis(CONNECT_TIMEOUT.get().max(1) as u64)
}

/// `erlang_cnode.call_timeout`.
pub fn call_timeout() -> Duration {
    Duration::from_millis(CALL_TIMEOUT.get().max(1) as u64)
}

/// `erlang_cnode.max_message_size`, in bytes.
pub fn max_message_size() -> usize {
    MAX_MESSAGE_SIZE.get().max(1) as usize * 1024
}

/// `erlang_cnode.node_prefix`.
pub fn node_prefix() -> String {
    text(&NODE_PREFIX).unwrap_or_else(|| "postgres".to_owned())
}

/// `erlang_cnode.node_host`, if set and not empty.
pub fn node_host() -> Option<String> {
    text(&NODE_HOST)
}
