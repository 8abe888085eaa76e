//! A server's `allow` option: what a role that is not a member of
//! `erlang_cnode_user` may do through that server. Parsed when the server
//! is created or altered (a malformed entry is an error then) and again
//! when a call checks it.
//!
//! | entry | permits |
//! |---|---|
//! | `Mod:fun/Arity` | `erlang_call` / `erlang_cast` of exactly that function |
//! | `Mod:fun` | that function at any arity |
//! | `Mod:*` | every function of the module |
//! | `service:NAME` | every function of the typed service `NAME` |
//! | `service:NAME.fun` | one function of it |
//! | `send:NAME` | `erlang_send` to the process registered as `NAME` |
//! | `gen_call:NAME` | `erlang_gen_call` to the server registered as `NAME` |
//!
//! Arguments holding a fun (`$fun`, `$closure`) are refused unless the entry
//! ends in `+funs`: a fun lets an allowed function run any other one.
//! Entries are separated by commas; white space around them is ignored.

use erlang_cnode_codec::Term;

/// The longest atom name, in characters.
const MAX_ATOM: usize = 255;

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Function {
        module: String,
        /// `None`: any function (`Mod:*`).
        function: Option<String>,
        /// `None`: any arity.
        arity: Option<u32>,
        funs: bool,
    },
    /// `NAME` or `NAME.fun`: matched against both readings, since a
    /// service's name may itself hold dots.
    Service(String),
    Send {
        name: String,
        funs: bool,
    },
    GenCall {
        name: String,
        funs: bool,
    },
}

/// A parsed `allow` option. Empty (nothing allowed) when the server has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

/// What a request would do, as the allow-list sees it.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// `erlang_call` or `erlang_cast` of `module:function/arity`.
    Call {
        /// Module name.
        module: &'a str,
        /// Function name.
        function: &'a str,
        /// Number of arguments.
        arity: usize,
    },
    /// `erlang_service_call` of `name.function`.
    Service {
        /// The service.
        name: &'a str,
        /// Its function.
        function: &'a str,
    },
    /// `erlang_send` to a registered name.
    Send {
        /// The registered name.
        name: &'a str,
    },
    /// `erlang_gen_call` to a registered server.
    GenCall {
        /// The registered name.
        name: &'a str,
    },
}

impl Request<'_> {
    /// How the refusal names it: `os:cmd/1`, `service:demo.add`, `send:init`.
    pub fn describe(&self) -> String {
        match self {
            Request::Call {
                module,
                function,
                arity,
            } => format!("{module}:{function}/{arity}"),
            Request::Service { name, function } => format!("service:{name}.{function}"),
            Request::Send { name } => format!("send:{name}"),
            Request::GenCall { name } => format!("gen_call:{name}"),
        }
    }
}

/// Whether an entry allows a request, and with funs in its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No entry matches.
    Refused,
    /// An entry matches, but not with funs in the arguments.
    WithoutFuns,
    /// An entry with `+funs` matches.
    WithFuns,
}

/// A malformed entry: which, and why. Its text is the entry as written
/// (allow-lists hold no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid allow entry \"{}\": {}", self.entry, self.reason)
    }
}

/// An atom name as an entry may write it: 1 to 255 characters, none of
/// them white space or one of the entry syntax's `,:/*+`.
fn name(text: &str) -> Result<String, &'static str> {
    if text.is_empty() {
        return Err("a name is empty");
    }
    if text.chars().count() > MAX_ATOM {
        return Err("a name is longer than 255 characters");
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || ",:/*+".contains(c))
    {
        return Err("a name holds white space or one of , : / * +");
    }
    Ok(text.to_owned())
}

fn parse_entry(text: &str) -> Result<Entry, &'static str> {
    let (body, funs) = match text.strip_suffix("+funs") {
        Some(body) => (body, true),
        None => (text, false),
    };
    let Some((head, rest)) = body.split_once(':') else {
        return Err(
            "expected Mod:fun/Arity, Mod:fun, Mod:*, service:NAME, send:NAME or gen_call:NAME",
        );
    };
    match head {
        "service" => {
            if funs {
                return Err("+funs does not apply to services (their arguments are typed)");
            }
            if rest.starts_with('.') || rest.ends_with('.') {
                return Err("a service name or function is empty");
            }
            Ok(Entry::Service(name(rest)?))
        }
        "send" => Ok(Entry::Send {
            name: name(rest)?,
            funs,
        }),
        "gen_call" => Ok(Entry::GenCall {
            name: name(rest)?,
            funs,
        }),
        module => {
            let module = name(module)?;
            if rest == "*" {
                return Ok(Entry::Function {
                    module,
                    function: None,
                    arity: None,
                    funs,
                });
            }
            let (function, arity) = match rest.split_once('/') {
                Some((function, arity)) => {
                    let arity: u32 = arity
                        .parse()
                        .ok()
                        .filter(|a| *a <= 255 && !arity.starts_with('+'))
                        .ok_or("the arity is not a whole number from 0 to 255")?;
                    (function, Some(arity))
                }
                None => (rest, None),
            };
            Ok(Entry::Function {
                module,
                function: Some(name(function)?),
                arity,
                funs,
            })
        }
    }
}

impl AllowList {
    /// Parses an `allow` option: comma-separated entries.
    pub fn parse(text: &str) -> Result<AllowList, ParseError> {
        let mut entries = Vec::new();
        for raw in text.split(',') {
            let entry = raw.trim();
            if entry.is_empty() && text.trim().is_empty() {
                continue;
            }
            entries.push(parse_entry(entry).map_err(|reason| ParseError {
                entry: entry.to_owned(),
                reason: if entry.is_empty() {
                    "an entry is empty (two commas in a row, or one at an end)"
                } else {
                    reason
                },
            })?);
        }
        Ok(AllowList { entries })
    }

    /// Whether an entry allows `request`, and whether with funs.
    pub fn verdict(&self, request: &Request<'_>) -> Verdict {
        let mut verdict = Verdict::Refused;
        for entry in &self.entries {
            let (matches, funs) = match (entry, request) {
                (
                    Entry::Function {
                        module,
                        function,
                        arity,
                        funs,
                    },
                    Request::Call {
                        module: m,
                        function: f,
                        arity: a,
                    },
                ) => (
                    module == m
                        && function.as_deref().is_none_or(|function| function == *f)
                        && arity.is_none_or(|arity| arity as usize == *a),
                    *funs,
                ),
                (
                    Entry::Service(text),
                    Request::Service {
                        name: n,
                        function: f,
                    },
                ) => (
                    text == n
                        || text
                            .strip_prefix(n)
                            .and_then(|rest| rest.strip_prefix('.'))
                            .is_some_and(|rest| rest == *f),
                    false,
                ),
                (Entry::Send { name, funs }, Request::Send { name: n }) => (name == n, *funs),
                (Entry::GenCall { name, funs }, Request::GenCall { name: n }) => (name == n, *funs),
                _ => (false, false),
            };
            if matches {
                if funs {
                    return Verdict::WithFuns;
                }
                verdict = Verdict::WithoutFuns;
            }
        }
        verdict
    }

    /// Whether any `service:` entry allows something of service `name`
    /// (`erlang_services` lists a service's functions only then).
    pub fn allows_service_function(&self, service: &str, function: &str) -> bool {
        self.verdict(&Request::Service {
            name: service,
            function,
        }) != Verdict::Refused
    }
}

/// Whether `term` holds a fun anywhere: a `$fun` (external fun) or a
/// `$closure`.
pub fn holds_fun(term: &Term<'_>) -> bool {
    match term {
        Term::ExternalFun(_) | Term::Closure(_) => true,
        Term::List(items) | Term::Tuple(items) => items.iter().any(holds_fun),
        Term::ImproperList(items, tail) => items.iter().any(holds_fun) || holds_fun(tail),
        Term::Map(entries) => entries.iter().any(|(k, v)| holds_fun(k) || holds_fun(v)),
        _ => false,
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{AllowList, Request, Verdict};
    use pgrx::prelude::*;

    fn call<'a>(module: &'a str, function: &'a str, arity: usize) -> Request<'a> {
        Request::Call {
            module,
            function,
            arity,
        }
    }

    #[pg_test]
    fn entries_match_what_they_name_and_nothing_more() {
        let list = AllowList::parse(
            " Elixir.String:upcase/1 ,lists:map/2+funs, timer:sleep, maps:*,\
             service:demo.add, service:accounts, send:orders, gen_call:presence+funs",
        )
        .unwrap();
        let verdict = |r: Request<'_>| list.verdict(&r);
        assert_eq!(
            verdict(call("Elixir.String", "upcase", 1)),
            Verdict::WithoutFuns
        );
        assert_eq!(
            verdict(call("Elixir.String", "upcase", 2)),
            Verdict::Refused
        );
        assert_eq!(
            verdict(call("Elixir.String", "downcase", 1)),
            Verdict::Refused
        );
        assert_eq!(verdict(call("lists", "map", 2)), Verdict::WithFuns);
        assert_eq!(verdict(call("lists", "filter", 2)), Verdict::Refused);
        assert_eq!(verdict(call("timer", "sleep", 1)), Verdict::WithoutFuns);
        assert_eq!(verdict(call("timer", "sleep", 7)), Verdict::WithoutFuns);
        assert_eq!(verdict(call("maps", "get", 3)), Verdict::WithoutFuns);
        assert_eq!(verdict(call("os", "cmd", 1)), Verdict::Refused);
        let service = |name, function| Request::Service { name, function };
        assert_eq!(verdict(service("demo", "add")), Verdict::WithoutFuns);
        assert_eq!(verdict(service("demo", "echo")), Verdict::Refused);
        assert_eq!(verdict(service("accounts", "find")), Verdict::WithoutFuns);
        assert_eq!(verdict(service("demo.add", "x")), Verdict::WithoutFuns);
        assert_eq!(
            verdict(Request::Send { name: "orders" }),
            Verdict::WithoutFuns
        );
        assert_eq!(verdict(Request::Send { name: "init" }), Verdict::Refused);
        assert_eq!(
            verdict(Request::GenCall { name: "presence" }),
            Verdict::WithFuns
        );
        assert_eq!(
            verdict(Request::GenCall { name: "orders" }),
            Verdict::Refused
        );
        // A module called like a prefix is a prefix: send:orders is no
        // function `orders` of a module `send`.
        assert_eq!(verdict(call("send", "orders", 1)), Verdict::Refused);
        assert!(
            AllowList::parse("")
                .unwrap()
                .verdict(&call("erlang", "node", 0))
                == Verdict::Refused
        );
        assert!(list.allows_service_function("demo", "add"));
        assert!(!list.allows_service_function("demo", "greet"));
    }

    #[pg_test]
    fn malformed_entries_are_refused() {
        for bad in [
            "erlang",
            "erlang:node/x",
            "erlang:node/256",
            "erlang:node/+1",
            "a:b,,c:d",
            "a:b,",
            ":f/1",
            "m:/1",
            "os:cmd /1",
            "service:",
            "service:.x",
            "service:demo.",
            "service:demo+funs",
            "send:",
            "m:f/1+fun",
        ] {
            assert!(AllowList::parse(bad).is_err(), "{bad} was accepted");
        }
        let long = "a".repeat(256);
        assert!(AllowList::parse(&format!("{long}:f/1")).is_err());
        assert!(AllowList::parse(&format!("{}:f/1", "a".repeat(255))).is_ok());
    }
}
