//! The normal distribution header (`131, 68, …`) and the per-connection atom
//! cache it maintains ("Distribution Header" in `erl_ext_dist`).

use super::tag::{DIST_HEADER, VERSION};
use crate::{Error, Result};

/// Number of atom cache segments times entries per segment.
const CACHE_ENTRIES: usize = 8 * 256;

/// The atom cache of one connection: 8 segments of 256 entries, filled by
/// new-entry references in distribution headers and read by cached ones.
#[derive(Debug, Clone)]
pub struct AtomCache {
    entries: Vec<Option<String>>,
}

impl Default for AtomCache {
    fn default() -> Self {
        AtomCache {
            entries: vec![None; CACHE_ENTRIES],
        }
    }
}

/// A parsed normal distribution header: the atoms that the `ATOM_CACHE_REF`s
/// of the terms after it refer to, in reference-index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistHeader {
    /// Atom for each `AtomCacheReferenceIndex`.
    pub atom_refs: Vec<String>,
    /// Bytes the header took, version byte included; the control message starts here.
    pub len: usize,
}

impl AtomCache {
    /// Parses a normal distribution header at the start of `input`, updating
    /// the cache with its new entries. Atom text is UTF-8 (OTP 23+ always
    /// negotiates `DFLAG_UTF8_ATOMS`).
    pub fn read_header(&mut self, input: &[u8]) -> Result<DistHeader> {
        let mut r = Reader { input, pos: 0 };
        if r.u8()? != VERSION {
            return Err(Error::Malformed {
                what: "distribution header must start with 131",
                offset: 0,
            });
        }
        let tag = r.u8()?;
        if tag != DIST_HEADER {
            return Err(Error::UnknownTag { tag, offset: 1 });
        }
        let count = usize::from(r.u8()?);
        if count == 0 {
            return Ok(DistHeader {
                atom_refs: Vec::new(),
                len: r.pos,
            });
        }
        let flags = r.take(count / 2 + 1)?;
        let half = |i: usize| (flags[i / 2] >> ((i % 2) * 4)) & 0x0f;
        let long_atoms = half(count) & 0x01 != 0;
        let mut atom_refs = Vec::with_capacity(count);
        for i in 0..count {
            let flag = half(i);
            let slot = usize::from(flag & 0x07) * 256 + usize::from(r.u8()?);
            if flag & 0x08 != 0 {
                let len = if long_atoms {
                    usize::from(r.u16()?)
                } else {
                    usize::from(r.u8()?)
                };
                let offset = r.pos;
                let text = std::str::from_utf8(r.take(len)?).map_err(|_| Error::Malformed {
                    what: "cached atom is not UTF-8",
                    offset,
                })?;
                if text.chars().count() > super::MAX_ATOM_CHARS {
                    return Err(Error::AtomTooLong);
                }
                self.entries[slot] = Some(text.to_owned());
            }
            let atom = self.entries[slot]
                .clone()
                .ok_or(Error::AtomCacheMiss { index: slot as u16 })?;
            atom_refs.push(atom);
        }
        Ok(DistHeader {
            atom_refs,
            len: r.pos,
        })
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let slice = self
            .input
            .get(self.pos..self.pos + n)
            .ok_or(Error::UnexpectedEnd {
                offset: self.input.len(),
            })?;
        self.pos += n;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::Decoder;
    use crate::Term;

    /// The header and control message of the example in `erl_ext_dist`
    /// ("Distribution Header for fragmented messages"), rewritten as a normal
    /// header, with the two already-cached atoms seeded first.
    #[test]
    fn reads_the_documented_example() {
        let mut cache = AtomCache::default();
        cache.entries[4 * 256 + 10] = Some("'a@host'".into());
        cache.entries[5] = Some("'b@host'".into());
        let mut bytes = vec![131, 68, 5, 4, 137, 9, 10, 5, 236, 3, b'r', b'e', b'g', 9, 4];
        bytes.extend_from_slice(b"call");
        bytes.extend_from_slice(&[238, 13]);
        bytes.extend_from_slice(b"set_get_state");
        let header_len = bytes.len();
        bytes.extend_from_slice(&[
            104, 4, 97, 6, 103, 82, 0, 0, 0, 0, 85, 0, 0, 0, 0, 2, 82, 1, 82, 2,
        ]);

        let header = cache.read_header(&bytes).unwrap();
        assert_eq!(header.len, header_len);
        assert_eq!(
            header.atom_refs,
            ["'a@host'", "'b@host'", "reg", "call", "set_get_state"]
        );
        let mut decoder = Decoder::new(&bytes[header.len..]).with_atom_refs(&header.atom_refs);
        let control = decoder.next_term().unwrap();
        let Term::Tuple(items) = control else {
            panic!("control message is a tuple")
        };
        assert_eq!(items[0], Term::Int(6));
        assert_eq!(items[2], Term::atom("'b@host'"));
        assert_eq!(items[3], Term::atom("reg"));
        decoder.finish().unwrap();

        // A later header that only refers to the cached entry gets the same atom.
        let again = cache.read_header(&[131, 68, 1, 0x01, 238]).unwrap();
        assert_eq!(again.atom_refs, ["set_get_state"]);
    }

    #[test]
    fn unknown_cached_entry_is_an_error() {
        let err = AtomCache::default()
            .read_header(&[131, 68, 1, 0x00, 7])
            .unwrap_err();
        assert_eq!(err, Error::AtomCacheMiss { index: 7 });
    }

    #[test]
    fn truncated_header_is_an_error() {
        let err = AtomCache::default()
            .read_header(&[131, 68, 3, 0x88])
            .unwrap_err();
        assert!(matches!(err, Error::UnexpectedEnd { .. }));
    }
}
