//! Node names, validated before any network use.

use crate::{Error, Result};

/// The longest node name OTP accepts (`name@host`).
pub const MAX_NODE_NAME: usize = 255;

/// A validated node name: `alive@host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeName {
    alive: String,
    host: String,
}

impl NodeName {
    /// Parses and checks `name@host`: both parts non-empty; the name of
    /// letters, digits, `_` and `-`; the host of letters, digits, `.`, `-`
    /// and `_` (an IPv4 address or DNS name); at most 255 bytes in all.
    pub fn parse(text: &str) -> Result<NodeName> {
        let invalid = |problem| Error::InvalidNodeName {
            name: text.chars().take(300).collect(),
            problem,
        };
        if text.len() > MAX_NODE_NAME {
            return Err(invalid("longer than 255 bytes"));
        }
        let (alive, host) = text
            .split_once('@')
            .ok_or_else(|| invalid("expected name@host"))?;
        if alive.is_empty() || host.is_empty() {
            return Err(invalid("expected name@host"));
        }
        if !alive
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "the name part may hold only letters, digits, '_' and '-'",
            ));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(invalid(
                "the host part may hold only letters, digits, '.', '-' and '_'",
            ));
        }
        Ok(NodeName {
            alive: alive.to_owned(),
            host: host.to_owned(),
        })
    }

    /// The part before `@`, as EPMD knows the node.
    pub fn alive(&self) -> &str {
        &self.alive
    }

    /// The part after `@`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this is a long name (`-name`): its host is dotted or an IP
    /// address. Short-named and long-named nodes do not talk to each other.
    pub fn is_long(&self) -> bool {
        self.host.contains('.') || self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.alive, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sname_and_name_forms() {
        for ok in [
            "a@b",
            "testnode@127.0.1.1",
            "my_node-2@host.example.com",
            "n@vm",
        ] {
            assert_eq!(NodeName::parse(ok).unwrap().to_string(), ok);
        }
    }

    #[test]
    fn refuses_everything_else() {
        let long = format!("a@{}", "h".repeat(254));
        for bad in [
            "",
            "a",
            "@b",
            "a@",
            "a@b@c",
            "a b@c",
            "a@b c",
            "a@b;rm",
            "é@b",
            "a@b\0",
            long.as_str(),
        ] {
            assert!(
                matches!(NodeName::parse(bad), Err(Error::InvalidNodeName { .. })),
                "{bad:?}"
            );
        }
    }
}
