//! Distribution flags, named as in "Distribution Flags" of the ERTS
//! distribution protocol documentation (`erl_dist_protocol`).
#![allow(missing_docs)]

pub const DFLAG_PUBLISHED: u64 = 0x1;
pub const DFLAG_EXTENDED_REFERENCES: u64 = 0x4;
pub const DFLAG_DIST_MONITOR: u64 = 0x8;
pub const DFLAG_FUN_TAGS: u64 = 0x10;
pub const DFLAG_DIST_MONITOR_NAME: u64 = 0x20;
pub const DFLAG_NEW_FUN_TAGS: u64 = 0x80;
pub const DFLAG_EXTENDED_PIDS_PORTS: u64 = 0x100;
pub const DFLAG_EXPORT_PTR_TAG: u64 = 0x200;
pub const DFLAG_BIT_BINARIES: u64 = 0x400;
pub const DFLAG_NEW_FLOATS: u64 = 0x800;
pub const DFLAG_UTF8_ATOMS: u64 = 0x10000;
pub const DFLAG_MAP_TAG: u64 = 0x20000;
pub const DFLAG_BIG_CREATION: u64 = 0x40000;
pub const DFLAG_EXIT_PAYLOAD: u64 = 0x400000;
pub const DFLAG_HANDSHAKE_23: u64 = 0x1000000;
pub const DFLAG_UNLINK_ID: u64 = 0x2000000;
pub const DFLAG_SPAWN: u64 = 1 << 32;
pub const DFLAG_V4_NC: u64 = 1 << 34;

/// What OTP 25 requires of every peer ("DFLAG_MANDATORY_25_DIGEST").
pub const MANDATORY_25: u64 = DFLAG_EXTENDED_REFERENCES
    | DFLAG_FUN_TAGS
    | DFLAG_EXTENDED_PIDS_PORTS
    | DFLAG_UTF8_ATOMS
    | DFLAG_NEW_FUN_TAGS
    | DFLAG_BIG_CREATION
    | DFLAG_NEW_FLOATS
    | DFLAG_MAP_TAG
    | DFLAG_EXPORT_PTR_TAG
    | DFLAG_BIT_BINARIES
    | DFLAG_HANDSHAKE_23;

/// What this node offers: the mandatory set, monitors, exit payloads,
/// unlink ids, spawn requests and full 64-bit identifiers (mandatory in
/// OTP 26). Not published: a hidden node. No atom cache, no fragments.
pub const OFFERED: u64 = MANDATORY_25
    | DFLAG_DIST_MONITOR
    | DFLAG_DIST_MONITOR_NAME
    | DFLAG_EXIT_PAYLOAD
    | DFLAG_UNLINK_ID
    | DFLAG_SPAWN
    | DFLAG_V4_NC;
