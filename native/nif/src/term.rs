//! `ErlangCnode.Term`: terms as JSON and back.
//!
//! A term goes to JSON through its external term format, which the codec
//! decodes exactly as the PostgreSQL extension decodes a term from the wire,
//! so a term gives the same JSON bytes on both sides. JSON comes back as a
//! term through ETF too: the codec encodes it and the VM decodes it with
//! `enif_binary_to_term`, in safe mode unless new atoms are allowed.

use erlang_cnode_codec::{etf, json, Error as CodecError, ExternalFun, Term as Value};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        existing,
        create,
        // Kinds of our own.
        unknown_atom,
        unknown_fun,
        // The codec's kinds (`erlang_cnode_codec::Error::kind`), made when
        // the library loads so that no call ever creates an atom.
        invalid_etf,
        too_deep,
        too_large,
        duplicate_key,
        atom_too_long,
        integer_too_large,
        non_finite_float,
        invalid_json,
        invalid_tag,
        unsupported,
    }
}

/// Why a conversion failed; becomes `{:error, {kind, message}}`.
#[derive(Debug)]
enum Failure {
    /// The codec refused the input.
    Codec(CodecError),
    /// `atoms: :existing` and the JSON names an atom the VM does not have.
    UnknownAtom { name: String },
    /// `atoms: :existing` and the JSON names an external fun that is not
    /// loaded: safe decoding refuses to create export entries, which are
    /// never freed, just as it refuses atoms.
    UnknownFun {
        module: String,
        function: String,
        arity: u8,
    },
    /// The VM would not decode the ETF the codec wrote for valid JSON.
    Refused,
}

impl From<CodecError> for Failure {
    fn from(error: CodecError) -> Self {
        Failure::Codec(error)
    }
}

impl Failure {
    fn kind(&self) -> Atom {
        match self {
            Failure::Codec(error) => match error.kind() {
                "invalid_etf" => atoms::invalid_etf(),
                "too_deep" => atoms::too_deep(),
                "too_large" => atoms::too_large(),
                "duplicate_key" => atoms::duplicate_key(),
                "atom_too_long" => atoms::atom_too_long(),
                "integer_too_large" => atoms::integer_too_large(),
                "non_finite_float" => atoms::non_finite_float(),
                "invalid_json" => atoms::invalid_json(),
                "invalid_tag" => atoms::invalid_tag(),
                // "unsupported" and any kind a later codec adds.
                _ => atoms::unsupported(),
            },
            Failure::UnknownAtom { .. } => atoms::unknown_atom(),
            Failure::UnknownFun { .. } => atoms::unknown_fun(),
            Failure::Refused => atoms::unsupported(),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Codec(error) => error.to_string(),
            Failure::UnknownAtom { name } => {
                format!("atom {name:?} does not exist (pass atoms: :create to create it)")
            }
            Failure::UnknownFun {
                module,
                function,
                arity,
            } => format!(
                "fun {module}:{function}/{arity} is not a loaded function \
                 (pass atoms: :create to accept it)"
            ),
            Failure::Refused => "the VM refused the term this JSON describes".to_string(),
        }
    }

    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let reason = (self.kind(), self.message()).encode(env);
        (atoms::error(), reason).encode(env)
    }
}

/// `term_to_json(term)`: `{:ok, json}` or `{:error, {kind, message}}`.
#[rustler::nif]
fn term_to_json<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    to_json(env, term)
}

/// `term_to_json/1` on a dirty CPU scheduler, for large terms.
#[rustler::nif(schedule = "DirtyCpu")]
fn term_to_json_dirty<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    to_json(env, term)
}

/// `json_to_term(json, atoms)`, `atoms` being `:existing` or `:create`:
/// `{:ok, term}` or `{:error, {kind, message}}`.
#[rustler::nif]
fn json_to_term<'a>(env: Env<'a>, json: Binary<'a>, atoms: Atom) -> NifResult<Term<'a>> {
    from_json(env, json.as_slice(), atom_mode(atoms)?)
}

/// `json_to_term/2` on a dirty CPU scheduler, for large documents.
#[rustler::nif(schedule = "DirtyCpu")]
fn json_to_term_dirty<'a>(env: Env<'a>, json: Binary<'a>, atoms: Atom) -> NifResult<Term<'a>> {
    from_json(env, json.as_slice(), atom_mode(atoms)?)
}

fn to_json<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    // The same bytes `term_to_binary/1` gives, read by the same decoder the
    // extension uses for terms from the wire.
    let etf = term.to_binary();
    match erlang_cnode_codec::etf_to_json(etf.as_slice()) {
        Ok(text) => (atoms::ok(), text.as_str()).encode(env),
        Err(error) => Failure::from(error).encode(env),
    }
}

/// Whether decoding may add atoms (and export entries) to the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtomMode {
    Existing,
    Create,
}

fn atom_mode(atoms: Atom) -> NifResult<AtomMode> {
    if atoms == atoms::existing() {
        Ok(AtomMode::Existing)
    } else if atoms == atoms::create() {
        Ok(AtomMode::Create)
    } else {
        Err(rustler::Error::BadArg)
    }
}

fn from_json<'a>(env: Env<'a>, json: &[u8], mode: AtomMode) -> NifResult<Term<'a>> {
    Ok(match to_term(env, json, mode) {
        Ok(term) => (atoms::ok(), term).encode(env),
        Err(failure) => failure.encode(env),
    })
}

fn to_term<'a>(env: Env<'a>, json: &[u8], mode: AtomMode) -> Result<Term<'a>, Failure> {
    let value = json::parse_bytes(json)?;
    let etf = etf::encode(&value)?;
    let decoded = match mode {
        // Safe mode creates no atom and no export entry, anywhere in the
        // term (node names of pids, references and ports included).
        AtomMode::Existing => env.binary_to_term(&etf),
        // SAFETY: the bytes come from the codec's encoder; "trusted" only
        // lets the VM create atoms and export entries, it still checks
        // every byte.
        AtomMode::Create => unsafe { env.binary_to_term_trusted(&etf) },
    };
    match decoded {
        Some((term, used)) if used == etf.len() => Ok(term),
        _ if mode == AtomMode::Existing => Err(explain_refusal(env, &value)),
        _ => Err(Failure::Refused),
    }
}

/// Why safe decoding refused `value`: the first atom the VM does not have,
/// or the first external fun it has not loaded. Walks the term with an
/// explicit stack, as the codec does, so depth costs heap.
fn explain_refusal(env: Env<'_>, value: &Value<'_>) -> Failure {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        let names: &[&str] = match value {
            Value::Atom(name) => &[name],
            Value::Pid(pid) => &[&pid.node],
            Value::Port(port) => &[&port.node],
            Value::Reference(reference) => &[&reference.node],
            Value::ExternalFun(fun) => &[&fun.module, &fun.function],
            Value::Closure(closure) => {
                stack.extend(&closure.free_vars);
                &[&closure.module, &closure.pid.node]
            }
            Value::List(items) | Value::Tuple(items) => {
                stack.extend(items);
                &[]
            }
            Value::ImproperList(items, tail) => {
                stack.extend(items);
                stack.push(tail);
                &[]
            }
            Value::Map(entries) => {
                stack.extend(entries.iter().flat_map(|(key, value)| [key, value]));
                &[]
            }
            Value::Int(_)
            | Value::BigInt(_)
            | Value::Float(_)
            | Value::Binary(_)
            | Value::Bitstring(_) => &[],
        };
        if let Some(name) = names
            .iter()
            .find(|name| !decodes_safely(env, &Value::atom(**name)))
        {
            return Failure::UnknownAtom {
                name: name.to_string(),
            };
        }
        if let Value::ExternalFun(fun) = value {
            if !decodes_safely(env, value) {
                let ExternalFun {
                    module,
                    function,
                    arity,
                } = &**fun;
                return Failure::UnknownFun {
                    module: module.to_string(),
                    function: function.to_string(),
                    arity: *arity,
                };
            }
        }
    }
    Failure::Refused
}

/// Whether the VM decodes this small term in safe mode, i.e. has all its
/// atoms (and, for an external fun, the function). OTP 25's
/// `enif_make_existing_atom` takes only Latin-1 names; this takes any.
fn decodes_safely(env: Env<'_>, value: &Value<'_>) -> bool {
    etf::encode(value).is_ok_and(|etf| env.binary_to_term(&etf).is_some())
}
