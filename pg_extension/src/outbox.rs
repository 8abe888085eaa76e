//! Messages queued at commit (docs/delivery.md): `erlang_send_on_commit`,
//! `erlang_cast_on_commit`, `erlang_outbox_retry` and `erlang_outbox_purge`
//! write `erlang_outbox_queue` in the caller's transaction, and a commit
//! that queued something wakes the database's worker (`worker.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Datum};
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgOid, Spi};

use crate::error::{SqlError, SqlResult};
use crate::{guc, registry};

/// What a queued message asks for, as `erlang_outbox_queue.kind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message in the acknowledged envelope.
    Acked,
    /// A bare message, sent once.
    Bare,
    /// A cast, retried until it returns.
    Cast,
}

impl Kind {
    /// Its letter in the table.
    pub fn letter(self) -> &'static str {
        match self {
            Kind::Acked => "a",
            Kind::Bare => "b",
            Kind::Cast => "c",
        }
    }

    /// The kind a letter stands for.
    pub fn of_letter(letter: &str) -> Option<Kind> {
        match letter {
            "a" => Some(Kind::Acked),
            "b" => Some(Kind::Bare),
            "c" => Some(Kind::Cast),
            _ => None,
        }
    }
}

/// One message to queue: the checked arguments of an on-commit function.
pub struct Message<'a> {
    /// The `node` argument as given (a server or a node name).
    pub node: &'a str,
    /// What it asks for.
    pub kind: Kind,
    /// The registered name, or `module:function`, or a target as text.
    pub target: String,
    /// A target other than a name, as a `jsonb` datum.
    pub target_term: Option<Datum>,
    /// The message, or the cast's arguments (a `jsonb` datum).
    pub payload: Datum,
    /// A cast's module and function.
    pub function: Option<(String, String)>,
    /// The de-duplication key.
    pub key: Option<String>,
    /// The role that queues it (its user mapping gives the cookie).
    pub owner: pg_sys::Oid,
}

thread_local! {
    /// Whether this transaction queued a message (the worker is woken when
    /// it commits).
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    /// The (sub)transaction that last made sure the transaction has its
    /// row in `erlang_outbox_commits`: a subtransaction that did it may
    /// have rolled back since, so another checks again.
    static NUMBERED_IN: Cell<Option<(u64, u32)>> = const { Cell::new(None) };
}

/// What every call needs of the installed extension, looked up once per
/// backend (again after the extension is dropped and created anew): its
/// schema, the queue's owner, and the kept plans of the queries (made with
/// the pinned search path, see [`as_queue_owner`]).
struct Installed {
    extension: pg_sys::Oid,
    schema: String,
    owner: pg_sys::Oid,
    insert: OwnedPreparedStatement,
    existing: OwnedPreparedStatement,
    release: OwnedPreparedStatement,
    number: OwnedPreparedStatement,
}

thread_local! {
    static INSTALLED: RefCell<Option<Rc<Installed>>> = const { RefCell::new(None) };
}

/// The installed extension, as [`Installed`] says. Only under
/// [`as_queue_owner`].
fn installed() -> SqlResult<Rc<Installed>> {
    // SAFETY: a catalog look-up in a transaction; missing_ok.
    let extension = unsafe { pg_sys::get_extension_oid(c"erlang_cnode".as_ptr(), true) };
    if extension == pg_sys::InvalidOid {
        return Err(SqlError::new(
            b"55000",
            "extension erlang_cnode is not installed",
        ));
    }
    if let Some(cached) = INSTALLED.with_borrow(Clone::clone) {
        if cached.extension == extension {
            return Ok(cached);
        }
    }
    let (schema, owner) = Spi::get_two::<String, pg_sys::Oid>(&format!(
        "SELECT pg_catalog.quote_ident(n.nspname), c.relowner \
           FROM pg_catalog.pg_extension e \
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace \
           JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid \
                AND c.relname OPERATOR(pg_catalog.=) 'erlang_outbox_queue' \
          WHERE e.oid OPERATOR(pg_catalog.=) {}",
        extension.to_u32()
    ))
    .map_err(spi_error)?;
    let (Some(schema), Some(owner)) = (schema, owner) else {
        return Err(SqlError::new(b"55000", "erlang_outbox_queue is missing"));
    };
    let text = PgOid::from(pg_sys::TEXTOID);
    let insert = format!(
        "INSERT INTO {schema}.erlang_outbox_queue \
           (node, kind, target, payload, key, owner, target_term) \
         VALUES ($1, $2::\"char\", $3, \
                 CASE WHEN $7 IS NULL THEN $4 ELSE jsonb_build_object( \
                   'module', $7, 'function', $8, 'args', $4) END, $5, $6, $9) \
         ON CONFLICT (node, key, owner) WHERE key IS NOT NULL AND state <> 'dead' DO NOTHING \
         RETURNING id"
    );
    let existing = format!(
        "SELECT id, state = 'delivered' AND delivered_at < now() - $4::interval \
           FROM {schema}.erlang_outbox_queue \
          WHERE node = $1 AND key = $2 AND owner = $3 AND state <> 'dead'"
    );
    let release =
        format!("DELETE FROM {schema}.erlang_outbox_queue WHERE id = $1 AND state = 'delivered'");
    let number = format!(
        "INSERT INTO {schema}.erlang_outbox_commits (txid) \
         VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING"
    );
    let oid = PgOid::from(pg_sys::OIDOID);
    let prepared = Spi::connect(|client| -> pgrx::spi::SpiResult<_> {
        let insert = client
            .prepare_mut(
                insert.as_str(),
                &[
                    text,
                    text,
                    text,
                    PgOid::from(pg_sys::JSONBOID),
                    text,
                    oid,
                    text,
                    text,
                    PgOid::from(pg_sys::JSONBOID),
                ],
            )?
            .keep();
        // Not read-only: they must see rows this transaction wrote.
        let existing = client
            .prepare_mut(existing.as_str(), &[text, text, oid, text])?
            .keep();
        let release = client
            .prepare_mut(release.as_str(), &[PgOid::from(pg_sys::INT8OID)])?
            .keep();
        let number = client.prepare_mut(number.as_str(), &[])?.keep();
        Ok((insert, existing, release, number))
    })
    .map_err(spi_error)?;
    let installed = Rc::new(Installed {
        extension,
        schema,
        owner,
        insert: prepared.0,
        existing: prepared.1,
        release: prepared.2,
        number: prepared.3,
    });
    INSTALLED.set(Some(installed.clone()));
    Ok(installed)
}

/// `search_path` set to `pg_catalog, pg_temp` until dropped (as a
/// function's `SET search_path` does), so that no object of the caller's
/// can stand in for one the queries use while they run as the queue's
/// owner.
struct PinnedSearchPath(i32);

impl PinnedSearchPath {
    fn new() -> PinnedSearchPath {
        // SAFETY: a nested GUC level, undone in drop (or by the
        // transaction's abort).
        unsafe {
            let level = pg_sys::NewGUCNestLevel();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                c"pg_catalog, pg_temp".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            PinnedSearchPath(level)
        }
    }
}

impl Drop for PinnedSearchPath {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: the level made in new.
            unsafe { pg_sys::AtEOXact_GUC(true, self.0) };
        }
    }
}

/// Runs `f` as the owner of `erlang_outbox_queue` (the functions check the
/// caller's rights first; the tables are not the caller's to write), as
/// PostgreSQL runs foreign-key checks as the table's owner, with the search
/// path pinned. (Not a security-restricted operation: PostgreSQL would
/// refuse to fire the commit-order trigger it queues.)
fn as_queue_owner<T>(f: impl FnOnce(&Installed) -> SqlResult<T>) -> SqlResult<T> {
    let _path = PinnedSearchPath::new();
    let installed = installed()?;
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back what GetUserIdAndSecContext returned.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads and sets the backend's current user, restored below
    // (and by PostgreSQL if the transaction aborts).
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            installed.owner,
            context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    let _restore = Restore(user, context);
    f(&installed)
}

fn spi_error(e: pgrx::spi::SpiError) -> SqlError {
    SqlError::new(b"XX000", format!("erlang_outbox_queue: {e}"))
}

/// Gives the transaction its row in `erlang_outbox_commits`, once per
/// (sub)transaction, so that the worker delivers in commit order.
fn number_transaction(installed: &Installed) -> SqlResult<()> {
    // SAFETY: plain reads of the current transaction's ids (assigning the
    // top-level id, which the insert below needs anyway).
    let here = unsafe {
        (
            pg_sys::GetTopFullTransactionId().value,
            pg_sys::GetCurrentSubTransactionId(),
        )
    };
    if NUMBERED_IN.get() == Some(here) {
        return Ok(());
    }
    Spi::connect_mut(|client| client.update(&installed.number, None, &[]).map(drop))
        .map_err(spi_error)?;
    NUMBERED_IN.set(Some(here));
    Ok(())
}

/// Runs a kept plan: its first row's first two columns.
fn first_row<A: pgrx::FromDatum + pgrx::IntoDatum, B: pgrx::FromDatum + pgrx::IntoDatum>(
    plan: &OwnedPreparedStatement,
    args: &[DatumWithOid<'_>],
    columns: usize,
) -> SqlResult<Option<(Option<A>, Option<B>)>> {
    Spi::connect_mut(|client| {
        let mut table = client.update(plan, None, args)?;
        match table.next() {
            None => Ok(None),
            Some(row) => {
                let a = row.get::<A>(1)?;
                let b = if columns > 1 { row.get::<B>(2)? } else { None };
                Ok(Some((a, b)))
            }
        }
    })
    .map_err(spi_error)
}

/// Queues `message` in the caller's transaction: its id, or the id of the
/// live message with the same key for the same node and role.
pub fn enqueue(message: Message<'_>) -> SqlResult<i64> {
    registry::require_worker()?;
    let retention = format!("{} seconds", guc::key_retention().as_secs());
    let id = as_queue_owner(|installed| {
        number_transaction(installed)?;
        let (module, function) = match &message.function {
            Some((module, function)) => (Some(module.as_str()), Some(function.as_str())),
            None => (None, None),
        };
        // Twice at most: a key whose message was delivered longer ago than
        // the retention is released, and the insert tried again.
        for _ in 0..2 {
            // SAFETY: each datum is of the type given with it.
            let args = unsafe {
                [
                    DatumWithOid::new(message.node, pg_sys::TEXTOID),
                    DatumWithOid::new(message.kind.letter(), pg_sys::TEXTOID),
                    DatumWithOid::new(message.target.as_str(), pg_sys::TEXTOID),
                    DatumWithOid::new(message.payload, pg_sys::JSONBOID),
                    DatumWithOid::new(message.key.as_deref(), pg_sys::TEXTOID),
                    DatumWithOid::new(message.owner, pg_sys::OIDOID),
                    DatumWithOid::new(module, pg_sys::TEXTOID),
                    DatumWithOid::new(function, pg_sys::TEXTOID),
                    DatumWithOid::new(message.target_term, pg_sys::JSONBOID),
                ]
            };
            if let Some((Some(id), _)) = first_row::<i64, bool>(&installed.insert, &args, 1)? {
                return Ok(id);
            }
            // The key is taken (DO NOTHING locks nothing, so a message
            // whose key is taken never holds up the worker).
            // SAFETY: as above.
            let args = unsafe {
                [
                    DatumWithOid::new(message.node, pg_sys::TEXTOID),
                    DatumWithOid::new(message.key.as_deref(), pg_sys::TEXTOID),
                    DatumWithOid::new(message.owner, pg_sys::OIDOID),
                    DatumWithOid::new(retention.as_str(), pg_sys::TEXTOID),
                ]
            };
            match first_row::<i64, bool>(&installed.existing, &args, 2)? {
                Some((Some(id), Some(false))) => return Ok(id),
                Some((Some(id), Some(true))) => {
                    first_row::<i64, bool>(&installed.release, &[DatumWithOid::from(id)], 1)?;
                }
                // Gone meanwhile (purged, or dead): try the insert again.
                _ => {}
            }
        }
        Err(SqlError::new(
            b"40001",
            "a message with this key kept changing meanwhile; try again",
        ))
    })?;
    QUEUED.set(true);
    Ok(id)
}

/// `erlang_outbox_retry(id)`: a dead or waiting message of the caller's
/// (any message, for full access) is tried again at once.
pub fn retry(id: i64, role: pg_sys::Oid, full_access: bool) -> SqlResult<bool> {
    let retried = as_queue_owner(|installed| {
        let schema = &installed.schema;
        Spi::get_one_with_args::<bool>(
            &format!(
                "WITH r AS (UPDATE {schema}.erlang_outbox_queue \
                   SET state = 'pending', next_attempt_at = now(), attempts = 0 \
                 WHERE id = $1 AND state IN ('pending', 'dead') AND (owner = $2 OR $3) \
                 RETURNING id) SELECT count(*) > 0 FROM r"
            ),
            &[
                DatumWithOid::from(id),
                DatumWithOid::from(role),
                DatumWithOid::from(full_access),
            ],
        )
        .map_err(spi_error)
    })?;
    if retried == Some(true) {
        QUEUED.set(true);
    }
    Ok(retried == Some(true))
}

/// `erlang_outbox_purge(older_than)`: deletes the caller's delivered and
/// dead messages (anyone's, for full access) enqueued before then.
pub fn purge(older_than: Datum, role: pg_sys::Oid, full_access: bool) -> SqlResult<i64> {
    let purged = as_queue_owner(|installed| {
        let schema = &installed.schema;
        // SAFETY: an interval datum, passed on as one.
        let interval = unsafe { DatumWithOid::new(older_than, pg_sys::INTERVALOID) };
        Spi::get_one_with_args::<i64>(
            &format!(
                "WITH d AS (DELETE FROM {schema}.erlang_outbox_queue \
                 WHERE state IN ('delivered', 'dead') \
                   AND enqueued_at < now() - $1 AND (owner = $2 OR $3) \
                 RETURNING id) SELECT count(*) FROM d"
            ),
            &[
                interval,
                DatumWithOid::from(role),
                DatumWithOid::from(full_access),
            ],
        )
        .map_err(spi_error)
    })?;
    Ok(purged.unwrap_or(0))
}

/// Wakes the worker when a transaction that queued messages commits, as
/// pg_net does; forgets them when it aborts or is prepared (`COMMIT
/// PREPARED` wakes it, see `backend.rs`).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            NUMBERED_IN.set(None);
            if QUEUED.replace(false) {
                registry::wake_worker();
            }
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            NUMBERED_IN.set(None);
            QUEUED.set(false);
        }
        _ => {}
    }
}

/// Registers the transaction callback. From `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback from _PG_init.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}
