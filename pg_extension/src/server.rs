//! Servers and user mappings of the `erlang_cnode` foreign-data wrapper,
//! and who may do what through them, the way `postgres_fdw` and `dblink`
//! keep their credentials: a server says where to connect and what its
//! users may call (`allow`), a user mapping holds the cookie (visible only
//! to superusers and the mapped role), and `GRANT USAGE ON FOREIGN SERVER`
//! says who may use it.
//!
//! Every function's `node` argument is a node name (`name@host`) or, with
//! no `@`, a server name. Members of `erlang_cnode_user` and superusers
//! may call anything, raw node names included; every other role only
//! through a server it has `USAGE` on, and only what its `allow` lists.

use std::ffi::{CStr, CString};
use std::time::Duration;

use erlang_cnode_node::NodeName;
use pgrx::pg_sys;
use pgrx::PgList;

use crate::allow::{AllowList, Request, Verdict};
use crate::error::{SqlError, SqlResult};
use crate::guc;

/// The foreign-data wrapper the extension creates.
pub const FDW: &CStr = c"erlang_cnode";
/// The role whose members have full access.
const FULL_ACCESS_ROLE: &CStr = c"erlang_cnode_user";

/// Where a request goes and under which rules.
#[derive(Debug)]
pub struct Endpoint {
    /// The node.
    pub node: NodeName,
    /// The server named instead of the node, if one was.
    pub server: Option<Server>,
    /// Whether the role has full access (superuser, or a member of
    /// `erlang_cnode_user`).
    pub privileged: bool,
    /// The role the request runs as.
    pub role: pg_sys::Oid,
}

/// A server's options and the calling role's user mapping.
pub struct Server {
    /// The server's name.
    pub name: String,
    /// Its `allow` option.
    pub allow: AllowList,
    connect_timeout: Option<Duration>,
    call_timeout: Option<Duration>,
    max_message_size: Option<usize>,
    /// The user mapping's cookie: the role's own mapping, else PUBLIC's.
    mapping: Mapping,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cookie.
        f.debug_struct("Server").field("name", &self.name).finish()
    }
}

/// The calling role's user mapping for a server.
enum Mapping {
    /// No mapping for the role nor for PUBLIC.
    None,
    /// A mapping without a cookie: the server OS user's cookie file.
    CookieFile,
    /// A mapping with a cookie.
    Cookie(String),
}

/// Where a connection's cookie comes from.
pub enum CookieSource {
    /// The server OS user's `~/.erlang.cookie`.
    File,
    /// A user mapping's cookie.
    Mapping(String),
}

/// The option names each catalog accepts, for the validator's errors.
const SERVER_OPTIONS: &[&str] = &[
    "node",
    "allow",
    "connect_timeout",
    "call_timeout",
    "max_message_size",
];
const MAPPING_OPTIONS: &[&str] = &["cookie"];

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("no NUL left")
}

/// `(name, value)` of every option in a list of `DefElem`s.
///
/// # Safety
/// `list` must be NULL or a valid `List` of `DefElem`s.
unsafe fn options(list: *mut pg_sys::List) -> Vec<(String, String)> {
    // SAFETY: the caller passes a list of DefElems.
    let list = unsafe { PgList::<pg_sys::DefElem>::from_pg(list) };
    list.iter_ptr()
        .map(|def| unsafe {
            let name = CStr::from_ptr((*def).defname)
                .to_string_lossy()
                .into_owned();
            let value = CStr::from_ptr(pg_sys::defGetString(def))
                .to_string_lossy()
                .into_owned();
            (name, value)
        })
        .collect()
}

/// A duration or size option, in the setting's syntax (`5s`, `500ms`,
/// `64MB`): PostgreSQL's own parser with the setting's unit.
fn parse_unit(name: &str, value: &str, unit: u32) -> SqlResult<i32> {
    let text = c_string(value);
    let mut result: i32 = 0;
    let mut hint: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: parse_int reads a C string and writes the result and hint.
    let ok = unsafe { pg_sys::parse_int(text.as_ptr(), &mut result, unit as i32, &mut hint) };
    if !ok || result < 1 {
        let expected = if unit == pg_sys::GUC_UNIT_MS {
            "a positive duration such as '5s' or '500ms'"
        } else {
            "a positive size such as '64MB' or '512kB'"
        };
        return Err(SqlError::invalid(format!(
            "invalid value for option \"{name}\": \"{value}\" (expected {expected})"
        )));
    }
    Ok(result)
}

/// Checks the options of an `erlang_cnode` server, user mapping or the
/// wrapper itself (`catalog` says which), as `CREATE`/`ALTER` give them.
/// A cookie's value is never echoed.
///
/// # Safety
/// `list` must be a valid `List` of `DefElem`s (or NULL).
pub unsafe fn validate(list: *mut pg_sys::List, catalog: pg_sys::Oid) -> SqlResult<()> {
    // SAFETY: as the caller promises.
    let options = unsafe { options(list) };
    // A statement that fails here may hold a cookie, under any option name
    // (a typo, a cookie given to a server): keep it out of the log.
    if catalog == pg_sys::UserMappingRelationId {
        options
            .iter()
            .for_each(|(_, value)| crate::log::add_secret(value));
    }
    validate_options(&options, catalog).map_err(SqlError::hide_statement)
}

fn validate_options(options: &[(String, String)], catalog: pg_sys::Oid) -> SqlResult<()> {
    let (valid, object) = if catalog == pg_sys::ForeignServerRelationId {
        (SERVER_OPTIONS, "server")
    } else if catalog == pg_sys::UserMappingRelationId {
        (MAPPING_OPTIONS, "user mapping")
    } else {
        (&[][..], "object")
    };
    for (name, value) in options {
        if !valid.contains(&name.as_str()) {
            crate::log::add_secret(value);
            let hint = if valid.is_empty() {
                format!("An erlang_cnode {object} takes no options.")
            } else {
                format!(
                    "Valid options for an erlang_cnode {object}: {}.",
                    valid.join(", ")
                )
            };
            return Err(SqlError::new(b"HV00D", format!("invalid option \"{name}\"")).hint(hint));
        }
        match name.as_str() {
            "node" => {
                NodeName::parse(value).map_err(|e| {
                    SqlError::invalid(format!("invalid value for option \"node\": {e}"))
                        .hint("A node name looks like name@host, as erl -sname or -name gives it.")
                })?;
            }
            "allow" => {
                AllowList::parse(value).map_err(|e| {
                    SqlError::invalid(e.to_string()).hint(
                        "Entries are Mod:fun/Arity, Mod:fun, Mod:*, service:NAME, service:NAME.fun, \
                         send:NAME or gen_call:NAME, separated by commas; +funs after one allows \
                         funs in its arguments.",
                    )
                })?;
            }
            "connect_timeout" | "call_timeout" => {
                parse_unit(name, value, pg_sys::GUC_UNIT_MS)?;
            }
            "max_message_size" => {
                parse_unit(name, value, pg_sys::GUC_UNIT_KB)?;
            }
            "cookie" => crate::functions::check_cookie(value)?,
            _ => unreachable!("listed above"),
        }
    }
    if catalog == pg_sys::ForeignServerRelationId && !options.iter().any(|(n, _)| n == "node") {
        return Err(
            SqlError::invalid("an erlang_cnode server needs the option \"node\"")
                .hint("For example OPTIONS (node 'app@web1').")
                .hide_statement(),
        );
    }
    Ok(())
}

/// Whether `role` has full access: a superuser, or a member of
/// `erlang_cnode_user` (with its privileges, as `has_privs_of_role` says).
pub fn full_access(role: pg_sys::Oid) -> bool {
    // SAFETY: catalog look-ups in a transaction.
    unsafe {
        if pg_sys::superuser_arg(role) {
            return true;
        }
        let full = pg_sys::get_role_oid(FULL_ACCESS_ROLE.as_ptr(), true);
        full != pg_sys::InvalidOid && pg_sys::has_privs_of_role(role, full)
    }
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd name, or NULL (noerr)
    // for a role dropped while this session still acts as it.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        return format!("(dropped role {})", role.to_u32());
    }
    // SAFETY: a NUL-terminated name.
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

fn has_usage(server: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: an ACL check on a catalog object.
    let result = unsafe {
        #[cfg(any(feature = "pg14", feature = "pg15"))]
        {
            pg_sys::pg_foreign_server_aclcheck(server, role, pg_sys::ACL_USAGE as pg_sys::AclMode)
        }
        #[cfg(not(any(feature = "pg14", feature = "pg15")))]
        {
            pg_sys::object_aclcheck(
                pg_sys::ForeignServerRelationId,
                server,
                role,
                pg_sys::ACL_USAGE as pg_sys::AclMode,
            )
        }
    };
    result == pg_sys::AclResult::ACLCHECK_OK
}

/// The options of `user`'s user mapping for `server` (`InvalidOid`:
/// PUBLIC's), if it has one.
fn mapping_options(server: pg_sys::Oid, user: pg_sys::Oid) -> Option<Vec<(String, String)>> {
    // SAFETY: a syscache look-up, released below; the options are copied
    // out before.
    unsafe {
        let tuple = pg_sys::SearchSysCache2(
            pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as i32,
            pg_sys::Datum::from(user),
            pg_sys::Datum::from(server),
        );
        if tuple.is_null() {
            return None;
        }
        let mut is_null = false;
        let datum = pg_sys::SysCacheGetAttr(
            pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as i32,
            tuple,
            pg_sys::Anum_pg_user_mapping_umoptions as pg_sys::AttrNumber,
            &mut is_null,
        );
        let found = if is_null {
            Vec::new()
        } else {
            options(pg_sys::untransformRelOptions(datum))
        };
        pg_sys::ReleaseSysCache(tuple);
        Some(found)
    }
}

/// The cookie a mapping's options give, if any.
fn cookie_of(options: Option<Vec<(String, String)>>) -> Option<Option<String>> {
    options.map(|options| {
        options
            .into_iter()
            .find(|(name, _)| name == "cookie")
            .map(|(_, cookie)| cookie)
    })
}

/// Where `role`'s cookie for `server` comes from. Its own mapping first,
/// then PUBLIC's, as PostgreSQL looks them up. A mapping without a cookie
/// means the server OS user's cookie file, but for a role without full
/// access only a PUBLIC mapping can say so: a role with `USAGE` may create
/// a mapping for itself, and that must not lend it the server's identity.
fn mapping(server: pg_sys::Oid, role: pg_sys::Oid, full_access: bool) -> Mapping {
    match cookie_of(mapping_options(server, role)) {
        Some(Some(cookie)) => return Mapping::Cookie(cookie),
        Some(None) if full_access => return Mapping::CookieFile,
        _ => {}
    }
    match cookie_of(mapping_options(server, pg_sys::InvalidOid)) {
        Some(Some(cookie)) => Mapping::Cookie(cookie),
        Some(None) => Mapping::CookieFile,
        None => Mapping::None,
    }
}

/// Reads server `name` (a server of this wrapper) for `role`: checks
/// `USAGE` unless `role` is a superuser, reads its options and the role's
/// user mapping.
fn server(name: &str, role: pg_sys::Oid, full_access: bool) -> SqlResult<(NodeName, Server)> {
    let c_name = c_string(name);
    // SAFETY: catalog look-ups in a transaction; missing_ok, so no ERROR.
    let (found, fdw) = unsafe {
        (
            pg_sys::GetForeignServerByName(c_name.as_ptr(), true),
            pg_sys::GetForeignDataWrapperByName(FDW.as_ptr(), true),
        )
    };
    if found.is_null() {
        return Err(SqlError::new(
            b"42704",
            format!("server \"{name}\" does not exist (and \"{name}\" is no node name: those are name@host)"),
        )
        .hint("Name a node as name@host, or a server made with CREATE SERVER … FOREIGN DATA WRAPPER erlang_cnode."));
    }
    // SAFETY: both are valid catalog structs.
    let (server_oid, server_fdw, list) =
        unsafe { ((*found).serverid, (*found).fdwid, (*found).options) };
    if fdw.is_null() || server_fdw != unsafe { (*fdw).fdwid } {
        return Err(SqlError::new(
            b"42809",
            format!("server \"{name}\" is not an erlang_cnode server"),
        ));
    }
    // SAFETY: superuser_arg is a catalog look-up.
    if !unsafe { pg_sys::superuser_arg(role) } && !has_usage(server_oid, role) {
        return Err(SqlError::new(
            b"42501",
            format!("permission denied for foreign server {name}"),
        )
        .hint(format!(
            "A superuser or the server's owner can GRANT USAGE ON FOREIGN SERVER {name} TO {}.",
            role_name(role)
        )));
    }
    // SAFETY: the server's option list.
    let options = unsafe { options(list) };
    let value = |key: &str| {
        options
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    };
    let node = value("node")
        .ok_or_else(|| SqlError::invalid(format!("server \"{name}\" has no option \"node\"")))?;
    let node = NodeName::parse(node).map_err(SqlError::from)?;
    let millis = |key: &str| -> SqlResult<Option<Duration>> {
        value(key)
            .map(|v| {
                parse_unit(key, v, pg_sys::GUC_UNIT_MS).map(|ms| Duration::from_millis(ms as u64))
            })
            .transpose()
    };
    let allow = AllowList::parse(value("allow").unwrap_or(""))
        .map_err(|e| SqlError::invalid(format!("server \"{name}\": {e}")))?;
    let mapping = mapping(server_oid, role, full_access);
    Ok((
        node,
        Server {
            name: name.to_owned(),
            allow,
            connect_timeout: millis("connect_timeout")?,
            call_timeout: millis("call_timeout")?,
            max_message_size: value("max_message_size")
                .map(|v| parse_unit("max_message_size", v, pg_sys::GUC_UNIT_KB))
                .transpose()?
                .map(|kb| kb as usize * 1024),
            mapping,
        },
    ))
}

/// Refuses a role with no right at all (not a member of
/// `erlang_cnode_user`, no `USAGE` on any server of this wrapper) before
/// anything else: it gets `42501` from every function, whatever its
/// arguments.
pub fn require_some_right() -> SqlResult<()> {
    let role = current_role();
    if full_access(role) || uses_any_server() {
        return Ok(());
    }
    Err(SqlError::new(
        b"42501",
        format!(
            "permission denied: role {} may not call Erlang nodes",
            role_name(role)
        ),
    )
    .hint(
        "Members of erlang_cnode_user may call any node; other roles call through a server \
         they have USAGE on (GRANT USAGE ON FOREIGN SERVER …).",
    ))
}

/// Whether `name` is a server of this wrapper (for telling swapped
/// arguments apart; no permission is checked).
pub fn is_server(name: &str) -> bool {
    let c_name = c_string(name);
    // SAFETY: catalog look-ups in a transaction; missing_ok, so no ERROR.
    unsafe {
        let found = pg_sys::GetForeignServerByName(c_name.as_ptr(), true);
        let fdw = pg_sys::GetForeignDataWrapperByName(FDW.as_ptr(), true);
        !found.is_null() && !fdw.is_null() && (*found).fdwid == (*fdw).fdwid
    }
}

/// Whether the current role has `USAGE` on any server of this wrapper.
pub fn uses_any_server() -> bool {
    pgrx::Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s \
         JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw \
         WHERE w.fdwname = 'erlang_cnode' AND pg_catalog.has_server_privilege(s.oid, 'USAGE'))",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The current role (`GetUserId()`: the owner inside a `SECURITY DEFINER`
/// function).
pub fn current_role() -> pg_sys::Oid {
    // SAFETY: reads the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}

/// Resolves a `node` argument: a node name (`name@host`, full access
/// only) or a server name.
pub fn resolve(text: &str) -> SqlResult<Endpoint> {
    resolve_as(text, current_role())
}

/// [`resolve`] for `role` (the background worker delivers as the role
/// that queued a message).
pub fn resolve_as(text: &str, role: pg_sys::Oid) -> SqlResult<Endpoint> {
    let privileged = full_access(role);
    if text.contains('@') {
        if !privileged {
            return Err(SqlError::new(
                b"42501",
                format!("permission denied to call node {text} by name"),
            )
            .hint(format!(
                "Only members of erlang_cnode_user call nodes by name; others call through a \
                 server they have USAGE on (erlang_call('server', …)). Role {} is neither.",
                role_name(role)
            )));
        }
        let node = NodeName::parse(text).map_err(SqlError::from)?;
        return Ok(Endpoint {
            node,
            server: None,
            privileged,
            role,
        });
    }
    let (node, server) = server(text, role, privileged)?;
    Ok(Endpoint {
        node,
        server: Some(server),
        privileged,
        role,
    })
}

impl Endpoint {
    /// Checks `request` against the server's `allow` option, for roles
    /// without full access. `funs` says whether its arguments hold a fun.
    pub fn check(&self, request: &Request<'_>, funs: bool) -> SqlResult<()> {
        if self.privileged {
            return Ok(());
        }
        let server = self
            .server
            .as_ref()
            .expect("roles without full access only get servers");
        let refused = |message: String| {
            SqlError::new(b"42501", message).hint(format!(
                "Members of erlang_cnode_user may call anything; other roles only what the \
                 server's allow option lists (ALTER SERVER {} OPTIONS (SET allow '…')).",
                server.name
            ))
        };
        match server.allow.verdict(request) {
            Verdict::Refused => Err(refused(format!(
                "{} is not allowed on server {}",
                request.describe(),
                server.name
            ))),
            Verdict::WithoutFuns if funs => Err(refused(format!(
                "{} with a fun in its arguments is not allowed on server {} (the entry needs +funs)",
                request.describe(),
                server.name
            ))),
            _ => Ok(()),
        }
    }

    /// Where this role's cookie for the node comes from. Roles without full
    /// access need a user mapping (their own or PUBLIC's): without one they
    /// would use the server OS user's identity, as `postgres_fdw` refuses
    /// a password-less connection to non-superusers.
    pub fn cookie_source(&self) -> SqlResult<CookieSource> {
        match self.server.as_ref().map(|s| &s.mapping) {
            None | Some(Mapping::CookieFile) => Ok(CookieSource::File),
            Some(Mapping::Cookie(cookie)) => Ok(CookieSource::Mapping(cookie.clone())),
            Some(Mapping::None) if self.privileged => Ok(CookieSource::File),
            Some(Mapping::None) => {
                let server = &self.server.as_ref().expect("matched").name;
                let role = role_name(self.role);
                Err(SqlError::new(
                    b"28000",
                    format!("no user mapping with a cookie for role {role} on server {server}"),
                )
                .hint(format!(
                    "A superuser or the server's owner can create one for PUBLIC (its cookie stays \
                     hidden from {role}), or for {role} with the option cookie."
                )))
            }
        }
    }

    /// The connect timeout: the server's, else the setting.
    pub fn connect_timeout(&self) -> Duration {
        self.server
            .as_ref()
            .and_then(|s| s.connect_timeout)
            .unwrap_or_else(guc::connect_timeout)
    }

    /// A call's timeout: `timeout_ms` if given, else the server's, else the
    /// setting. Roles without full access cannot go past the server's (or
    /// the setting's) limit.
    pub fn call_timeout(&self, timeout_ms: Option<i32>) -> SqlResult<Duration> {
        let default = self
            .server
            .as_ref()
            .and_then(|s| s.call_timeout)
            .unwrap_or_else(guc::call_timeout);
        let timeout = crate::backend::timeout(timeout_ms, default)?;
        if timeout > default && !self.privileged {
            return Err(SqlError::new(
                b"42501",
                format!(
                    "timeout_ms {} is over the {} ms limit of server {}",
                    timeout.as_millis(),
                    default.as_millis(),
                    self.server.as_ref().map_or("", |s| s.name.as_str())
                ),
            )
            .hint(
                "The server's call_timeout option (else erlang_cnode.call_timeout) is the limit.",
            ));
        }
        Ok(timeout)
    }

    /// The largest reply accepted: the server's, else the setting.
    pub fn max_message_size(&self) -> usize {
        self.server
            .as_ref()
            .and_then(|s| s.max_message_size)
            .unwrap_or_else(guc::max_message_size)
    }
}
