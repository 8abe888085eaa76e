//! The Erlang external term format (ETF): decoding, encoding and the
//! distribution header's atom cache.
//!
//! Tag names and layouts follow the "External Term Format" chapter of the ERTS
//! user's guide (`erl_ext_dist`).

mod decode;
mod dist;
mod encode;

pub use decode::{decode, Decoder};
pub use dist::{AtomCache, DistHeader};
pub use encode::{encode, encode_body_into, encode_into, encode_with_atom_refs};

/// Tag bytes, named as in `erl_ext_dist`.
#[allow(missing_docs)]
pub mod tag {
    pub const VERSION: u8 = 131;
    pub const DIST_HEADER: u8 = 68;
    pub const DIST_FRAG_HEADER: u8 = 69;
    pub const DIST_FRAG_CONT: u8 = 70;
    pub const COMPRESSED: u8 = 80;
    pub const ATOM_CACHE_REF: u8 = 82;
    pub const NEW_FLOAT_EXT: u8 = 70;
    pub const BIT_BINARY_EXT: u8 = 77;
    pub const NEW_PID_EXT: u8 = 88;
    pub const NEW_PORT_EXT: u8 = 89;
    pub const NEWER_REFERENCE_EXT: u8 = 90;
    pub const SMALL_INTEGER_EXT: u8 = 97;
    pub const INTEGER_EXT: u8 = 98;
    pub const FLOAT_EXT: u8 = 99;
    pub const ATOM_EXT: u8 = 100;
    pub const REFERENCE_EXT: u8 = 101;
    pub const PORT_EXT: u8 = 102;
    pub const PID_EXT: u8 = 103;
    pub const SMALL_TUPLE_EXT: u8 = 104;
    pub const LARGE_TUPLE_EXT: u8 = 105;
    pub const NIL_EXT: u8 = 106;
    pub const STRING_EXT: u8 = 107;
    pub const LIST_EXT: u8 = 108;
    pub const BINARY_EXT: u8 = 109;
    pub const SMALL_BIG_EXT: u8 = 110;
    pub const LARGE_BIG_EXT: u8 = 111;
    pub const NEW_FUN_EXT: u8 = 112;
    pub const EXPORT_EXT: u8 = 113;
    pub const NEW_REFERENCE_EXT: u8 = 114;
    pub const SMALL_ATOM_EXT: u8 = 115;
    pub const MAP_EXT: u8 = 116;
    pub const ATOM_UTF8_EXT: u8 = 118;
    pub const SMALL_ATOM_UTF8_EXT: u8 = 119;
    pub const V4_PORT_EXT: u8 = 120;
}

/// The most characters an atom may have.
pub const MAX_ATOM_CHARS: usize = 255;
/// The most id words a reference may carry.
pub const MAX_REFERENCE_WORDS: usize = 5;
