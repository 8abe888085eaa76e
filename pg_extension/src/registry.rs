//! Which database's worker is running, in shared memory: a worker claims
//! its database's slot when it starts (a second one for the same database
//! gives way), backends find it there to wake it at commit, and the
//! on-commit functions refuse to queue what no worker would deliver.

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::lwlock::PgLwLock;
use pgrx::pg_sys;
use pgrx::shmem::PGRXSharedMemory;

use crate::error::{SqlError, SqlResult};
use crate::guc;

/// The most databases served at once.
pub const MAX_WORKERS: usize = 128;

#[derive(Clone, Copy)]
struct Slot {
    database: u32,
    pid: i32,
    /// The database's name (for the launcher, which has no catalog).
    name: [u8; NAME_BYTES],
}

/// Room for a database name (PostgreSQL's NAMEDATALEN).
const NAME_BYTES: usize = 64;

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            database: 0,
            pid: 0,
            name: [0; NAME_BYTES],
        }
    }
}

impl Slot {
    fn named(&self, name: &str) -> bool {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        &self.name[..end] == name.as_bytes()
    }
}

/// The slots of the running workers.
#[derive(Clone, Copy)]
pub struct Workers {
    slots: [Slot; MAX_WORKERS],
}

impl Default for Workers {
    fn default() -> Workers {
        Workers {
            slots: [Slot::default(); MAX_WORKERS],
        }
    }
}

// SAFETY: plain integers, no pointers.
unsafe impl PGRXSharedMemory for Workers {}

// SAFETY: the only lock of this name.
static WORKERS: PgLwLock<Workers> = unsafe { PgLwLock::new(c"erlang_cnode_workers") };

/// Whether the library was loaded from `shared_preload_libraries` (so the
/// slots exist and workers can run).
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Whether `shared_preload_libraries` loaded the library.
pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

/// Asks for the shared memory. From `_PG_init`, when preloading.
#[allow(unexpected_cfgs)]
pub fn init() {
    use pgrx::pg_guard;
    // SAFETY: a flag PostgreSQL sets while it loads preloaded libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    pgrx::pg_shmem_init!(WORKERS);
    PRELOADED.store(true, Ordering::Relaxed);
}

/// Whether `pid` is a live process of this cluster.
fn alive(pid: i32) -> bool {
    // SAFETY: looks the pid up in the proc array.
    pid != 0 && !unsafe { pg_sys::BackendPidGetProc(pid) }.is_null()
}

/// Claims `database` (named `name`) for the calling worker: false if a
/// live worker holds it already, or every slot is taken.
pub fn claim(database: pg_sys::Oid, name: &str) -> bool {
    // SAFETY: this process's pid.
    let me = unsafe { pg_sys::MyProcPid };
    let mut workers = WORKERS.exclusive();
    let database = database.to_u32();
    if workers
        .slots
        .iter()
        .any(|s| s.database == database && s.pid != me && alive(s.pid))
    {
        return false;
    }
    for slot in workers.slots.iter_mut() {
        if slot.database == database || !alive(slot.pid) {
            slot.database = 0;
            slot.pid = 0;
        }
    }
    match workers.slots.iter_mut().find(|s| s.pid == 0) {
        Some(slot) => {
            let mut bytes = [0; NAME_BYTES];
            let len = name.len().min(NAME_BYTES - 1);
            bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
            *slot = Slot {
                database,
                pid: me,
                name: bytes,
            };
            true
        }
        None => false,
    }
}

/// Whether a live worker serves the database named `name`.
pub fn serving(name: &str) -> bool {
    let workers = WORKERS.share();
    workers.slots.iter().any(|s| s.named(name) && alive(s.pid))
}

/// Gives the calling worker's slot up (as it exits).
pub fn release() {
    if !preloaded() {
        return;
    }
    // SAFETY: this process's pid.
    let me = unsafe { pg_sys::MyProcPid };
    let mut workers = WORKERS.exclusive();
    for slot in workers.slots.iter_mut().filter(|s| s.pid == me) {
        *slot = Slot::default();
    }
}

/// The pid of the live worker of the current database.
fn worker_pid() -> Option<i32> {
    if !preloaded() {
        return None;
    }
    // SAFETY: the backend's database.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let workers = WORKERS.share();
    workers
        .slots
        .iter()
        .find(|s| s.database == database && alive(s.pid))
        .map(|s| s.pid)
}

/// Sets the latch of the current database's worker, if it runs.
pub fn wake_worker() {
    let Some(pid) = worker_pid() else { return };
    // SAFETY: the proc is looked up under ProcArrayLock; setting a latch
    // of another process is what latches are for.
    unsafe {
        let proc_ = pg_sys::BackendPidGetProc(pid);
        if !proc_.is_null() {
            pg_sys::SetLatch(&raw mut (*proc_).procLatch);
        }
    }
}

/// The current database's name.
fn database_name() -> String {
    // SAFETY: a catalog look-up of the backend's database.
    unsafe {
        let name = pg_sys::get_database_name(pg_sys::MyDatabaseId);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// Refuses to queue a message that no worker would deliver.
pub fn require_worker() -> SqlResult<()> {
    if !preloaded() {
        return Err(SqlError::new(
            b"55000",
            "no background worker delivers messages queued at commit: erlang_cnode is not in shared_preload_libraries",
        )
        .hint(
            "Add erlang_cnode to shared_preload_libraries in postgresql.conf and restart PostgreSQL \
             (see docs/delivery.md).",
        ));
    }
    let database = database_name();
    let listed = guc::databases().contains(&database);
    // A listed database has a worker, or will have one in a moment (at
    // start-up, after a restart of the worker): what is queued meanwhile
    // waits for it.
    if listed || worker_pid().is_some() {
        return Ok(());
    }
    let error = SqlError::new(
        b"55000",
        format!("no erlang_cnode worker is running for database \"{database}\""),
    );
    Err(error.hint(format!(
        "Add {database} to erlang_cnode.databases in postgresql.conf and reload \
         (SELECT pg_reload_conf())."
    )))
}
