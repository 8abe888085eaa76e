//! A worker's deliveries (docs/delivery.md): claim what is due in commit
//! order, send it with no transaction open, record what became of each
//! message as its answer comes. Messages for one node and destination are
//! never overtaken: while one waits for its next attempt, those after it
//! wait too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use erlang_cnode_codec::Term;
use erlang_cnode_node::{Courier, Fate, NodeName, Parcel, Reach, Recipient, Target, Timeouts};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::Spi;

use crate::backend::{self, waiter};
use crate::error::{SqlError, SqlResult};
use crate::outbox::Kind;
use crate::server::CookieSource;
use crate::{guc, jsonb, server, targets};

/// The longest a worker waits for answers before it looks for new work.
const IDLE: Duration = Duration::from_secs(5);

/// The most messages in flight at once (dispatched, not yet settled).
const MAX_IN_FLIGHT: usize = 2000;

/// One claimed message.
struct Row {
    id: i64,
    node: String,
    kind: Kind,
    target: String,
    body: String,
    module: Option<String>,
    function: Option<String>,
    owner: pg_sys::Oid,
    /// A target other than a name, as JSON.
    target_term: Option<String>,
}

/// Where a role's messages for a node go, with which cookie, and how long
/// connecting may take.
struct Route {
    node: NodeName,
    cookie: String,
    connect_timeout: Duration,
}

/// What a step found to do.
pub enum Step {
    /// It claimed or settled something: go on at once.
    Busy,
    /// Nothing is due or in flight; the next attempt falls due after this,
    /// if any.
    Idle(Option<Duration>),
}

/// A worker's deliveries: the courier of the node layer, with what is in
/// flight.
pub struct Deliveries {
    courier: Courier,
    /// The extension's oid and schema (quoted), looked up again only when
    /// the extension is another one (dropped and created anew).
    schema: Option<(pg_sys::Oid, String)>,
}

impl Deliveries {
    /// A worker's node, with no connections yet.
    pub fn new() -> SqlResult<Deliveries> {
        Ok(Deliveries {
            courier: Courier::new(backend::new_nodes()?),
            schema: None,
        })
    }

    /// With nothing to do: waits until `until` on the latch and on every
    /// connection, answering the nodes' ticks so that connections stay up.
    /// Whether there was a connection to wait on.
    pub fn idle(&mut self, until: Instant) -> bool {
        self.courier.idle(&mut waiter(), until)
    }

    /// Claims what is due (in a short transaction), sends it, reads what
    /// came back, and records what was settled (in another).
    pub fn step(&mut self) -> Step {
        let in_flight = self.courier.in_flight();
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        let known = self.schema.take();
        let claimed = BackgroundWorker::transaction(|| {
            let (extension, schema) = installed_schema(known)?;
            let rows = if room > 0 {
                fetch(&schema, &in_flight, room)
            } else {
                Vec::new()
            };
            let routes = routes(&rows);
            let next = if rows.is_empty() {
                next_due(&schema)
            } else {
                None
            };
            Some((extension, schema, rows, routes, next))
        });
        let Some((extension, schema, rows, routes, next)) = claimed else {
            // Not installed (yet): look again later.
            return Step::Idle(Some(Duration::from_secs(30)));
        };
        self.schema = Some((extension, schema.clone()));
        if !rows.is_empty() {
            // A transaction becomes visible before its commit record is
            // on disk when synchronous_commit is off: nothing goes out
            // before it (or the sequence that gave the ids) is durable.
            // SAFETY: flushing WAL written so far; not in recovery.
            unsafe { pg_sys::XLogFlush(pg_sys::GetXLogInsertRecPtr()) };
        }
        let sent_any = !rows.is_empty() && self.dispatch(&schema, rows, &routes);
        if !sent_any && self.courier.in_flight().is_empty() {
            return Step::Idle(next);
        }
        // Wait for answers only when there is nothing new to send.
        let until = if sent_any {
            Instant::now()
        } else {
            Instant::now() + next.unwrap_or(IDLE).min(IDLE)
        };
        let fates = self.courier.collect(&mut waiter(), until);
        if !fates.is_empty() {
            BackgroundWorker::transaction(|| record(&schema, &fates));
        }
        Step::Busy
    }

    /// Sends the claimed rows: whether any was sent or settled (rows held
    /// back by [`Courier::dispatch`] are claimed again later). Bare
    /// messages are sent at most once: they are recorded as delivered
    /// before they go, once their node is known to be reachable.
    fn dispatch(&mut self, schema: &str, rows: Vec<Row>, routes: &Routes) -> bool {
        let delivery = guc::delivery_timeout();
        let mut failed: Vec<(i64, Fate)> = Vec::new();
        let mut ready: Vec<(i64, Kind, &Route, Parcel)> = Vec::new();
        for row in &rows {
            match (
                routes.get(&(row.owner.to_u32(), row.node.clone())),
                parcel(row),
            ) {
                (Some(Ok(route)), Ok(parcel)) => ready.push((row.id, row.kind, route, parcel)),
                (Some(Err(why)), _) => failed.push((row.id, Fate::Failed(why.clone()))),
                (_, Err(why)) => failed.push((row.id, Fate::Failed(why))),
                (None, _) => {}
            }
        }
        let mut bare: Vec<i64> = Vec::new();
        for (id, kind, route, _) in &ready {
            if *kind != Kind::Bare {
                continue;
            }
            let cookie = || Ok(route.cookie.clone());
            let target = Target {
                node: &route.node,
                cookie: &cookie,
            };
            match self
                .courier
                .reach(&target, route.connect_timeout, &mut waiter())
            {
                Reach::Ready => bare.push(*id),
                Reach::Held => {}
                Reach::Failed(why) => failed.push((*id, Fate::Failed(why))),
            }
        }
        if !bare.is_empty() {
            // Only what this marked goes (a row another transaction held,
            // say a retry, is skipped: sent now, it could go twice).
            bare = BackgroundWorker::transaction(|| mark_delivered(schema, &bare));
        }
        let mut sent_any = !failed.is_empty() || !bare.is_empty();
        // Bare messages held back after all (an acknowledged one of
        // another role's cookie made their node busy since their reach
        // above): marked delivered, they go back to pending.
        let mut unsent_bare: Vec<i64> = Vec::new();
        for (id, kind, route, parcel) in ready {
            let settled = failed.iter().any(|(f, _)| *f == id);
            if settled || (kind == Kind::Bare && !bare.contains(&id)) {
                continue;
            }
            let cookie = || Ok(route.cookie.clone());
            let target = Target {
                node: &route.node,
                cookie: &cookie,
            };
            let timeouts = Timeouts {
                connect: route.connect_timeout,
                delivery,
            };
            let dispatched = self
                .courier
                .dispatch(&target, id, parcel, timeouts, &mut waiter());
            if !dispatched && kind == Kind::Bare {
                unsent_bare.push(id);
            }
            sent_any |= dispatched;
        }
        if !unsent_bare.is_empty() {
            BackgroundWorker::transaction(|| mark_pending_again(schema, &unsent_bare));
        }
        if !failed.is_empty() {
            BackgroundWorker::transaction(|| record(schema, &failed));
        }
        sent_any
    }
}

type Routes = BTreeMap<(u32, String), Result<Route, String>>;

/// Each role's route to each node of `rows`: the server's node and the
/// cookie its user mapping gives the role (or the cookie file), or why
/// there is none (the server was dropped, the mapping is gone, …).
fn routes(rows: &[Row]) -> Routes {
    let mut routes = Routes::new();
    for row in rows {
        let key = (row.owner.to_u32(), row.node.clone());
        if routes.contains_key(&key) {
            continue;
        }
        let route = server::resolve_as(&row.node, row.owner)
            .and_then(|endpoint| {
                let cookie = match endpoint.cookie_source()? {
                    CookieSource::Mapping(cookie) => cookie,
                    CookieSource::File => backend::cookie_file().map_err(SqlError::from)?,
                };
                Ok(Route {
                    connect_timeout: endpoint.connect_timeout(),
                    node: endpoint.node,
                    cookie,
                })
            })
            .map_err(|e| e.message().to_owned());
        routes.insert(key, route);
    }
    routes
}

/// The extension's oid and schema (quoted) in the worker's database, if
/// it is installed: `known` as it is while the extension is the same.
fn installed_schema(known: Option<(pg_sys::Oid, String)>) -> Option<(pg_sys::Oid, String)> {
    // SAFETY: a catalog look-up in a transaction; missing_ok.
    let extension = unsafe { pg_sys::get_extension_oid(c"erlang_cnode".as_ptr(), true) };
    if extension == pg_sys::InvalidOid {
        return None;
    }
    if let Some(known) = known.filter(|(oid, _)| *oid == extension) {
        return Some(known);
    }
    let schema = Spi::get_one::<String>(&format!(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e \
         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.oid = {}",
        extension.to_u32()
    ))
    .ok()
    .flatten()?;
    Some((extension, schema))
}

fn run(query: &str, args: &[DatumWithOid<'_>]) {
    Spi::run_with_args(query, args).unwrap_or_else(|e| pgrx::error!("erlang_cnode worker: {e}"));
}

/// Up to `limit` pending messages not in flight, in commit order, skipping
/// every destination whose first message waits for a later attempt.
fn fetch(schema: &str, in_flight: &[i64], limit: usize) -> Vec<Row> {
    let query = format!(
        "SELECT o.id, o.node, o.kind::text, o.target, \
                (CASE WHEN o.kind = 'c' THEN o.payload -> 'args' ELSE o.payload END)::text, \
                o.payload ->> 'module', o.payload ->> 'function', o.owner, \
                o.target_term::text \
           FROM {schema}.erlang_outbox_queue o \
           LEFT JOIN {schema}.erlang_outbox_commits c ON c.txid = o.txid \
          WHERE o.state = 'pending' AND o.id <> ALL($1) \
            AND NOT EXISTS (SELECT FROM {schema}.erlang_outbox_queue w \
                             WHERE w.state = 'pending' AND w.next_attempt_at > pg_catalog.now() \
                               AND w.node = o.node AND w.target = o.target \
                               AND w.owner = o.owner) \
          ORDER BY c.seq NULLS FIRST, o.id \
          LIMIT {limit}"
    );
    Spi::connect(|client| {
        let table = client
            .select(&query, None, &[DatumWithOid::from(in_flight.to_vec())])
            .unwrap_or_else(|e| pgrx::error!("erlang_cnode worker: {e}"));
        let mut rows = Vec::new();
        for row in table {
            let text = |n: usize| row.get::<String>(n).ok().flatten();
            let kind = text(3).as_deref().and_then(Kind::of_letter);
            let (Some(id), Some(node), Some(kind), Some(target), Some(body), Some(owner)) = (
                row.get::<i64>(1).ok().flatten(),
                text(2),
                kind,
                text(4),
                text(5),
                row.get::<pg_sys::Oid>(8).ok().flatten(),
            ) else {
                continue;
            };
            rows.push(Row {
                id,
                node,
                kind,
                target,
                body,
                module: text(6),
                function: text(7),
                owner,
                target_term: text(9),
            });
        }
        rows
    })
}

/// How long until the first waiting message falls due.
fn next_due(schema: &str) -> Option<Duration> {
    let seconds = Spi::get_one::<f64>(&format!(
        "SELECT extract(epoch FROM min(next_attempt_at) - pg_catalog.now())::float8 \
           FROM {schema}.erlang_outbox_queue \
          WHERE state = 'pending' AND next_attempt_at > pg_catalog.now()"
    ))
    .ok()
    .flatten()?;
    Some(Duration::from_secs_f64(seconds.max(0.0)) + Duration::from_millis(5))
}

/// Who a message row is for: its name, or the pid or registered name of
/// its target term.
fn recipient(row: &Row) -> Result<Recipient, String> {
    let Some(json) = &row.target_term else {
        return Ok(Recipient::Name(row.target.clone()));
    };
    let term = jsonb::term_of(json, "target")
        .map_err(|e| e.message().to_owned())?
        .into_owned();
    if let pid @ Term::Pid(_) = term {
        return Ok(Recipient::Pid(pid));
    }
    match targets::registry(&term) {
        Some((module, name)) => Ok(Recipient::Registered { module, name }),
        None => Err(format!("{} is no target", row.target)),
    }
}

/// The parcel a row stands for, or why it cannot be one.
fn parcel(row: &Row) -> Result<Parcel, String> {
    let term = jsonb::term_of(&row.body, "message")
        .map_err(|e| e.message().to_owned())?
        .into_owned();
    Ok(match row.kind {
        Kind::Acked => Parcel::Acked {
            to: recipient(row)?,
            destination: row.target.clone(),
            message: term,
        },
        Kind::Bare => Parcel::Bare {
            to: recipient(row)?,
            destination: row.target.clone(),
            message: term,
        },
        Kind::Cast => {
            let Term::List(args) = term else {
                return Err("the arguments of a cast are not a list".into());
            };
            Parcel::Cast {
                module: row.module.clone().unwrap_or_default(),
                function: row.function.clone().unwrap_or_default(),
                args,
            }
        }
    })
}

/// Marks pending messages delivered: the ids it marked (a row another
/// transaction holds is skipped).
fn mark_delivered(schema: &str, ids: &[i64]) -> Vec<i64> {
    let query = format!(
        "UPDATE {schema}.erlang_outbox_queue \
            SET state = 'delivered', delivered_at = pg_catalog.now(), \
                attempts = attempts + 1, last_error = NULL \
          WHERE id IN (SELECT id FROM {schema}.erlang_outbox_queue \
                        WHERE id = ANY($1) AND state = 'pending' \
                        FOR UPDATE SKIP LOCKED) \
        RETURNING id"
    );
    Spi::connect_mut(|client| {
        let table = client
            .update(&query, None, &[DatumWithOid::from(ids.to_vec())])
            .unwrap_or_else(|e| pgrx::error!("erlang_cnode worker: {e}"));
        table
            .filter_map(|row| row.get::<i64>(1).ok().flatten())
            .collect()
    })
}

/// Undoes [`mark_delivered`] for bare messages that were held back after
/// all, not sent: pending again, as they were.
fn mark_pending_again(schema: &str, ids: &[i64]) {
    run(
        &format!(
            "UPDATE {schema}.erlang_outbox_queue \
                SET state = 'pending', delivered_at = NULL, attempts = attempts - 1 \
              WHERE id = ANY($1) AND state = 'delivered'"
        ),
        &[DatumWithOid::from(ids.to_vec())],
    );
}

/// Records what became of each message: delivered ones are done, failed
/// ones wait (twice as long each time) or are dead after
/// `erlang_cnode.max_attempts`.
fn record(schema: &str, fates: &[(i64, Fate)]) {
    let delivered: Vec<i64> = fates
        .iter()
        .filter(|(_, f)| *f == Fate::Delivered)
        .map(|(id, _)| *id)
        .collect();
    if !delivered.is_empty() {
        mark_delivered(schema, &delivered);
    }
    let mut failed: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (id, fate) in fates {
        if let Fate::Failed(why) = fate {
            failed.entry(why.as_str()).or_default().push(*id);
        }
    }
    let (delay, max_delay) = guc::retry_delays();
    for (why, ids) in failed {
        run(
            &format!(
                "UPDATE {schema}.erlang_outbox_queue \
                    SET attempts = attempts + 1, last_error = $2, \
                        state = CASE WHEN attempts + 1 >= $3 THEN 'dead' ELSE 'pending' END, \
                        next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => \
                            least($5::float8, $4::float8 * pg_catalog.power(2::float8, least(attempts, 40))) \
                            * (0.75::float8 + pg_catalog.random() / 2) / 1000) \
                  WHERE id IN (SELECT id FROM {schema}.erlang_outbox_queue \
                                WHERE id = ANY($1) AND state = 'pending' \
                                FOR UPDATE SKIP LOCKED)"
            ),
            &[
                DatumWithOid::from(ids),
                DatumWithOid::from(why),
                DatumWithOid::from(guc::max_attempts()),
                DatumWithOid::from(delay.as_millis() as f64),
                DatumWithOid::from(max_delay.as_millis() as f64),
            ],
        );
    }
}

impl Deliveries {
    /// Removes delivered messages past `erlang_cnode.key_retention`, and
    /// the commit numbers of transactions with nothing left to deliver.
    pub fn housekeeping(&mut self) {
        let known = self.schema.take();
        self.schema = BackgroundWorker::transaction(|| {
            let (extension, schema) = installed_schema(known)?;
            remove_what_is_done(&schema);
            Some((extension, schema))
        });
    }
}

/// The housekeeping's deletes, in one transaction.
fn remove_what_is_done(schema: &str) {
    let retention = format!("{} seconds", guc::key_retention().as_secs());
    run(
        &format!(
            "DELETE FROM {schema}.erlang_outbox_queue \
              WHERE id IN (SELECT id FROM {schema}.erlang_outbox_queue \
                            WHERE state = 'delivered' \
                              AND delivered_at < pg_catalog.now() - $1::pg_catalog.interval \
                            FOR UPDATE SKIP LOCKED)"
        ),
        &[DatumWithOid::from(retention.as_str())],
    );
    run(
        &format!(
            "DELETE FROM {schema}.erlang_outbox_commits c \
              WHERE NOT EXISTS (SELECT FROM {schema}.erlang_outbox_queue o \
                                 WHERE o.txid = c.txid AND o.state = 'pending')"
        ),
        &[],
    );
}
