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
    /// The registered name, or `module:function`.
    pub target: String,
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
/// schema, the queue's owner, and the kept plans of the queries.
struct Installed {
    extension: pg_sys::Oid,
    schema: String,
    owner: pg_sys::Oid,
    insert: OwnedPreparedStatement,
    existing: OwnedPreparedStatement,
    number: OwnedPreparedStatement,
}

thread_local! {
    static INSTALLED: RefCell<Option<Rc<Installed>>> = const { RefCell::new(None) };
}

/// The installed extension, as [`Installed`] says.
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
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
           JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'erlang_outbox_queue' \
          WHERE e.oid = {}",
        extension.to_u32()
    ))
    .map_err(spi_error)?;
    let (Some(schema), Some(owner)) = (schema, owner) else {
        return Err(SqlError::new(b"55000", "erlang_outbox_queue is missing"));
    };
    let text = PgOid::from(pg_sys::TEXTOID);
    let insert = format!(
        "INSERT INTO {schema}.erlang_outbox_queue AS o (node, kind, target, payload, key, owner) \
         VALUES ($1, $2::\"char\", $3, \
                 CASE WHEN $8 IS NULL THEN $4 ELSE pg_catalog.jsonb_build_object( \
                   'module', $8, 'function', $9, 'args', $4) END, $5, $6) \
         ON CONFLICT (node, key) WHERE key IS NOT NULL AND state <> 'dead' DO UPDATE \
           SET id = EXCLUDED.id, kind = EXCLUDED.kind, target = EXCLUDED.target, \
               payload = EXCLUDED.payload, owner = EXCLUDED.owner, txid = EXCLUDED.txid, \
               state = 'pending', attempts = 0, enqueued_at = EXCLUDED.enqueued_at, \
               next_attempt_at = EXCLUDED.next_attempt_at, delivered_at = NULL, last_error = NULL \
           WHERE o.state = 'delivered' \
             AND o.delivered_at < pg_catalog.now() - $7::pg_catalog.interval \
         RETURNING id"
    );
    let existing = format!(
        "SELECT id FROM {schema}.erlang_outbox_queue WHERE node = $1 AND key = $2 AND state <> 'dead'"
    );
    let number = format!(
        "INSERT INTO {schema}.erlang_outbox_commits (txid) \
         VALUES (pg_catalog.pg_current_xact_id()) ON CONFLICT DO NOTHING"
    );
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
                    PgOid::from(pg_sys::OIDOID),
                    text,
                    text,
                    text,
                ],
            )?
            .keep();
        // Not read-only: it must see rows this transaction inserted.
        let existing = client.prepare_mut(existing.as_str(), &[text, text])?.keep();
        let number = client.prepare_mut(number.as_str(), &[])?.keep();
        Ok((insert, existing, number))
    })
    .map_err(spi_error)?;
    let installed = Rc::new(Installed {
        extension,
        schema,
        owner,
        insert: prepared.0,
        existing: prepared.1,
        number: prepared.2,
    });
    INSTALLED.set(Some(installed.clone()));
    Ok(installed)
}

/// The schema the extension lives in, quoted.
fn schema() -> SqlResult<String> {
    Ok(installed()?.schema.clone())
}

/// Runs `f` as the owner of `erlang_outbox_queue` (the functions check the
/// caller's rights first; the tables are not the caller's to write), as
/// PostgreSQL runs foreign-key checks as the table's owner.
fn as_queue_owner<T>(f: impl FnOnce(&Installed) -> SqlResult<T>) -> SqlResult<T> {
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

/// Queues `message` in the caller's transaction: its id, or the id of the
/// live message with the same key for the same node.
pub fn enqueue(message: Message<'_>) -> SqlResult<i64> {
    registry::require_worker()?;
    let retention = format!("{} seconds", guc::key_retention().as_secs());
    let id = as_queue_owner(|installed| {
        number_transaction(installed)?;
        let (module, function) = match &message.function {
            Some((module, function)) => (Some(module.as_str()), Some(function.as_str())),
            None => (None, None),
        };
        // SAFETY: each datum is of the type given with it.
        let args = unsafe {
            [
                DatumWithOid::new(message.node, pg_sys::TEXTOID),
                DatumWithOid::new(message.kind.letter(), pg_sys::TEXTOID),
                DatumWithOid::new(message.target.as_str(), pg_sys::TEXTOID),
                DatumWithOid::new(message.payload, pg_sys::JSONBOID),
                DatumWithOid::new(message.key.as_deref(), pg_sys::TEXTOID),
                DatumWithOid::new(message.owner, pg_sys::OIDOID),
                DatumWithOid::new(retention.as_str(), pg_sys::TEXTOID),
                DatumWithOid::new(module, pg_sys::TEXTOID),
                DatumWithOid::new(function, pg_sys::TEXTOID),
            ]
        };
        let inserted = Spi::connect_mut(|client| {
            let mut table = client.update(&installed.insert, None, &args)?;
            table.next().map_or(Ok(None), |row| row.get::<i64>(1))
        })
        .map_err(spi_error)?;
        if let Some(id) = inserted {
            return Ok(id);
        }
        // The key is taken: the live message's id.
        let args = [
            DatumWithOid::from(message.node),
            DatumWithOid::from(message.key.as_deref()),
        ];
        Spi::connect_mut(|client| {
            let mut table = client.update(&installed.existing, None, &args)?;
            table.next().map_or(Ok(None), |row| row.get::<i64>(1))
        })
        .map_err(spi_error)?
        .ok_or_else(|| {
            SqlError::new(
                b"40001",
                "the message with this key vanished meanwhile; try again",
            )
        })
    })?;
    QUEUED.set(true);
    Ok(id)
}

/// `erlang_outbox_retry(id)`: a dead or waiting message of the caller's
/// (any message, for full access) is tried again at once.
pub fn retry(id: i64, role: pg_sys::Oid, full_access: bool) -> SqlResult<bool> {
    let schema = schema()?;
    let retried = as_queue_owner(|_| {
        Spi::get_one_with_args::<bool>(
            &format!(
                "WITH r AS (UPDATE {schema}.erlang_outbox_queue \
                   SET state = 'pending', next_attempt_at = pg_catalog.now(), attempts = 0 \
                 WHERE id = $1 AND state IN ('pending', 'dead') AND (owner = $2 OR $3) \
                 RETURNING id) SELECT count(*) > 0 FROM r"
            ),
            &[
                DatumWithOid::from(id),
                DatumWithOid::from(role),
                DatumWithOid::from(full_access),
            ],
        )
        .map_err(|e| match e {
            pgrx::spi::SpiError::DatumError(_) => spi_error(e),
            other => SqlError::new(b"23505", format!("message {id} cannot be retried: {other}")),
        })
    })?;
    if retried == Some(true) {
        QUEUED.set(true);
    }
    Ok(retried == Some(true))
}

/// `erlang_outbox_purge(older_than)`: deletes the caller's delivered and
/// dead messages (anyone's, for full access) enqueued before then.
pub fn purge(older_than: Datum, role: pg_sys::Oid, full_access: bool) -> SqlResult<i64> {
    let schema = schema()?;
    let purged = as_queue_owner(|_| {
        // SAFETY: an interval datum, passed on as one.
        let interval = unsafe { DatumWithOid::new(older_than, pg_sys::INTERVALOID) };
        Spi::get_one_with_args::<i64>(
            &format!(
                "WITH d AS (DELETE FROM {schema}.erlang_outbox_queue \
                 WHERE state IN ('delivered', 'dead') \
                   AND enqueued_at < pg_catalog.now() - $1 AND (owner = $2 OR $3) \
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
