//! The one error type of the codec.

use thiserror::Error;

/// Everything that can go wrong while decoding or encoding a term.
///
/// Every variant carries enough context to explain itself; [`Error::kind`]
/// gives a stable, machine-readable name that callers (the PostgreSQL
/// extension, the NIF) map to SQLSTATEs and `{:error, {kind, message}}`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a term.
    #[error("external term format: input ends early at byte {offset}")]
    UnexpectedEnd {
        /// Byte offset where more input was needed.
        offset: usize,
    },
    /// A tag byte this codec does not know (or that cannot appear here).
    #[error("external term format: unknown or unsupported tag {tag} at byte {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Where it was found.
        offset: usize,
    },
    /// Structurally invalid ETF data (bad field value, wrong nested type).
    #[error("external term format: {what} at byte {offset}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// Bytes left over after a complete term.
    #[error("external term format: {extra} trailing byte(s) after the term")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// An `ATOM_CACHE_REF` with no atom cache or a reference the cache does not hold.
    #[error(
        "external term format: atom cache reference {index} is not in the distribution header"
    )]
    AtomCacheMiss {
        /// The reference index.
        index: u16,
    },
    /// The zlib stream of a compressed term is broken or has the wrong size.
    #[error("external term format: compressed term is corrupt ({what})")]
    Decompress {
        /// What went wrong.
        what: &'static str,
    },
    /// Nesting deeper than [`crate::Limits::max_depth`].
    #[error("term is nested deeper than the limit of {limit} levels")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// Data larger than [`crate::Limits::max_size`].
    #[error("term data exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A map with the same key twice.
    #[error("map has a duplicate key")]
    DuplicateKey,
    /// An atom longer than 255 characters.
    #[error("atom is longer than 255 characters")]
    AtomTooLong,
    /// An integer with more decimal digits than JSON conversion allows.
    #[error("integer has more than {limit} decimal digits")]
    IntegerTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A float that is NaN or infinite, or a JSON number out of the float range.
    #[error("float is not finite")]
    NonFiniteFloat,
    /// JSON text that does not follow the JSON grammar.
    #[error("JSON: expected {expected} at byte {offset}")]
    JsonSyntax {
        /// What the parser expected.
        expected: &'static str,
        /// Where.
        offset: usize,
    },
    /// A JSON object with the same key twice.
    #[error("JSON: duplicate object key {key:?}")]
    JsonDuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A tagged JSON form (`{"$atom": …}` and friends) with an invalid payload.
    #[error("JSON: invalid {tag} form: {problem}")]
    BadTag {
        /// The tag, e.g. `$atom`.
        tag: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A term that cannot be converted to the requested type (eetf conversion).
    #[error("unsupported term: {what}")]
    Unsupported {
        /// What was not supported.
        what: &'static str,
    },
}

impl Error {
    /// A stable name for this kind of error, for mapping to SQLSTATEs and
    /// Elixir error tuples. Never contains user data.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnexpectedEnd { .. }
            | Error::UnknownTag { .. }
            | Error::Malformed { .. }
            | Error::TrailingBytes { .. }
            | Error::AtomCacheMiss { .. }
            | Error::Decompress { .. } => "invalid_etf",
            Error::TooDeep { .. } => "too_deep",
            Error::TooLarge { .. } => "too_large",
            Error::DuplicateKey | Error::JsonDuplicateKey { .. } => "duplicate_key",
            Error::AtomTooLong => "atom_too_long",
            Error::IntegerTooLarge { .. } => "integer_too_large",
            Error::NonFiniteFloat => "non_finite_float",
            Error::JsonSyntax { .. } => "invalid_json",
            Error::BadTag { .. } => "invalid_tag",
            Error::Unsupported { .. } => "unsupported",
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
