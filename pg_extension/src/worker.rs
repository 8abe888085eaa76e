//! The background workers of delivery at commit (docs/delivery.md).
//!
//! - The launcher (`erlang_cnode launcher`), registered from `_PG_init`
//!   under `shared_preload_libraries`, starts one worker per database of
//!   `erlang_cnode.databases`, and again for a database added on a reload.
//! - A worker (`erlang_cnode worker`) claims its database (a second one
//!   gives way), then loops: claim what is due in a short transaction,
//!   send it with no transaction open, read the answers that came, record
//!   what was settled in another transaction (`courier.rs`). With nothing
//!   to do it sleeps on its latch, which a commit that queued something
//!   sets.
//!
//! Both restart after a crash; their settings are read again on a reload.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker,
};
use pgrx::pg_sys;

use crate::{courier, guc, registry};

/// How long a worker sleeps when nothing is due and nobody wakes it.
const IDLE_WAKE: Duration = Duration::from_secs(5);
/// How often delivered messages past their retention are removed.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// The least time between two starts of a database's worker by the
/// launcher.
const RESTART_SPACING: Duration = Duration::from_secs(10);
/// How soon a crashed worker or launcher is started again.
const RESTART: Duration = Duration::from_secs(1);

/// Registers the launcher. From `_PG_init`, when preloading.
pub fn init() {
    if !registry::preloaded() {
        return;
    }
    BackgroundWorkerBuilder::new("erlang_cnode launcher")
        .set_type("erlang_cnode launcher")
        .set_library("erlang_cnode")
        .set_function("erlang_cnode_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(RESTART))
        .load();
}

unsafe extern "C-unwind" {
    /// PostgreSQL's `SIGTERM` handler (declared here: `pg_sys` wraps it
    /// for calling, not as a handler).
    fn die(signal: std::ffi::c_int);
    /// PostgreSQL's `SIGHUP` handler.
    fn SignalHandlerForConfigReload(signal: std::ffi::c_int);
}

/// Installs PostgreSQL's own handlers: `SIGTERM` ends the process through
/// `CHECK_FOR_INTERRUPTS` (so a wait on a node is cut short too), `SIGHUP`
/// asks for a reload.
fn attach_signals() {
    // SAFETY: handlers PostgreSQL provides for exactly this.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        {
            pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(die));
            pg_sys::pqsignal(pg_sys::SIGHUP as i32, Some(SignalHandlerForConfigReload));
        }
        #[cfg(feature = "pg18")]
        {
            pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(die));
            pg_sys::pqsignal_be(pg_sys::SIGHUP as i32, Some(SignalHandlerForConfigReload));
        }
        pg_sys::BackgroundWorkerUnblockSignals();
    }
}

/// Ends the process on a pending terminate; reads the configuration
/// again on a pending reload.
fn check_signals() {
    pgrx::check_for_interrupts!();
    // SAFETY: a flag the SIGHUP handler sets.
    unsafe {
        if std::ptr::read_volatile(&raw const pg_sys::ConfigReloadPending) != 0 {
            std::ptr::write_volatile(&raw mut pg_sys::ConfigReloadPending, 0);
            pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP);
        }
    }
}

/// Sleeps on the latch until it is set, `timeout` passes, or the
/// postmaster dies (which ends the process).
fn sleep(timeout: Duration) {
    // SAFETY: the process's own latch.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            timeout.as_millis().min(i32::MAX as u128) as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
}

/// The launcher: keeps one worker per listed database.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn erlang_cnode_launcher_main(_arg: pg_sys::Datum) {
    attach_signals();
    // No database: only so that it shows in pg_stat_activity.
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut running: BTreeMap<String, DynamicBackgroundWorker> = BTreeMap::new();
    let mut started_at: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        check_signals();
        let wanted = guc::databases();
        // A worker no longer wanted is stopped (it also stops itself when
        // it sees the setting); one that stopped for good is forgotten.
        let unwanted: Vec<String> = running
            .keys()
            .filter(|d| !wanted.contains(d))
            .cloned()
            .collect();
        for database in unwanted {
            if let Some(worker) = running.remove(&database) {
                let _ = worker.terminate();
            }
        }
        running.retain(|_, worker| {
            !matches!(
                worker.pid(),
                Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied)
            )
        });
        for database in &wanted {
            // One that runs already (started by an earlier launcher) is
            // left alone; none is started twice within RESTART_SPACING.
            let recent = started_at
                .get(database)
                .is_some_and(|t| t.elapsed() < RESTART_SPACING);
            if running.contains_key(database) || recent || registry::serving(database) {
                continue;
            }
            started_at.insert(database.clone(), Instant::now());
            match start_worker(database) {
                Some(worker) => {
                    running.insert(database.clone(), worker);
                }
                None => pgrx::warning!(
                    "erlang_cnode: could not start a worker for database \"{database}\"; \
                     raise max_worker_processes"
                ),
            }
        }
        sleep(Duration::from_secs(10));
    }
}

/// Starts the worker of `database`.
fn start_worker(database: &str) -> Option<DynamicBackgroundWorker> {
    BackgroundWorkerBuilder::new(&format!("erlang_cnode worker for {database}"))
        .set_type("erlang_cnode worker")
        .set_library("erlang_cnode")
        .set_function("erlang_cnode_worker_main")
        .set_extra(database)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(RESTART))
        // SAFETY: this process's pid, to hear about the worker's start.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .ok()
}

/// Gives up the slot as the worker exits, however it exits.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_worker_exit(_code: i32, _arg: pg_sys::Datum) {
    registry::release();
}

/// A worker: delivers what its database queued.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn erlang_cnode_worker_main(_arg: pg_sys::Datum) {
    attach_signals();
    let database = BackgroundWorker::get_extra().to_owned();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // SAFETY: the database the worker is connected to.
    if !registry::claim(unsafe { pg_sys::MyDatabaseId }, &database) {
        pgrx::log!("erlang_cnode: another worker serves database \"{database}\"");
        return;
    }
    // SAFETY: registering an exit callback for this process.
    unsafe { pg_sys::before_shmem_exit(Some(on_worker_exit), pg_sys::Datum::from(0)) };
    // The worker runs as a superuser: nothing on its search path but the
    // catalog (its queries name the extension's schema).
    BackgroundWorker::transaction(|| {
        pgrx::Spi::run("SET search_path = pg_catalog, pg_temp")
            .unwrap_or_else(|e| pgrx::error!("erlang_cnode worker: {e}"))
    });
    let mut deliveries = match courier::Deliveries::new() {
        Ok(deliveries) => deliveries,
        Err(e) => pgrx::error!("erlang_cnode worker: {}", e.message()),
    };
    let mut housekeeping = Instant::now();
    loop {
        check_signals();
        if !guc::databases().contains(&database) {
            pgrx::log!(
                "erlang_cnode: database \"{database}\" is no longer in erlang_cnode.databases"
            );
            return;
        }
        // Reset before looking, so that a commit from now on wakes the
        // next wait.
        // SAFETY: the process's own latch.
        unsafe { pg_sys::ResetLatch(pg_sys::MyLatch) };
        if housekeeping <= Instant::now() {
            deliveries.housekeeping();
            housekeeping = Instant::now() + HOUSEKEEPING;
        }
        if let courier::Step::Idle(next) = deliveries.step() {
            let wait = next.unwrap_or(IDLE_WAKE).min(IDLE_WAKE);
            // Idle connections are read while waiting (ticks answered).
            if !deliveries.idle(Instant::now() + wait) {
                sleep(wait);
            }
        }
    }
}
