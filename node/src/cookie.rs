//! The cookie file, read the way `erl` reads `~/.erlang.cookie`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{Error, Result};

/// The longest cookie accepted (OTP's own limit is 255 characters).
pub const MAX_COOKIE: usize = 255;

/// Reads a cookie file: it must belong to nobody but its owner (mode
/// `0400`/`0600`, as `erl` demands), hold one line of printable ASCII, and
/// not be empty. Errors name the file and the problem, never the contents.
pub fn read_cookie_file(path: &Path) -> Result<String> {
    let bad = |problem: &'static str| Error::CookieFile {
        path: path.display().to_string(),
        problem,
    };
    let metadata = std::fs::metadata(path).map_err(|_| bad("cannot be read"))?;
    if !metadata.is_file() {
        return Err(bad("is not a file"));
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(bad("must be accessible by its owner only (chmod 400)"));
    }
    let bytes = std::fs::read(path).map_err(|_| bad("cannot be read"))?;
    let cookie = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let cookie = cookie.strip_suffix(b"\r").unwrap_or(cookie);
    if cookie.is_empty() {
        return Err(bad("is empty"));
    }
    if cookie.len() > MAX_COOKIE {
        return Err(bad("holds a cookie longer than 255 characters"));
    }
    if !cookie.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must hold one line of printable characters"));
    }
    Ok(String::from_utf8(cookie.to_vec()).expect("checked ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("cookie_test_{}_{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn reads_a_private_cookie_file() {
        assert_eq!(
            read_cookie_file(&file("ok", b"SECRETCOOKIE\n", 0o400)).unwrap(),
            "SECRETCOOKIE"
        );
        assert_eq!(
            read_cookie_file(&file("nonl", b"abc", 0o600)).unwrap(),
            "abc"
        );
    }

    #[test]
    fn refuses_bad_files_without_showing_their_contents() {
        for (name, contents, mode) in [
            ("shared", &b"SECRETCOOKIE"[..], 0o644),
            ("empty", b"", 0o400),
            ("two_lines", b"SECRET\nCOOKIE\n", 0o400),
            ("spaces", b"SECRET COOKIE", 0o400),
        ] {
            let err = read_cookie_file(&file(name, contents, mode)).unwrap_err();
            assert!(matches!(err, Error::CookieFile { .. }), "{name}: {err:?}");
            assert!(!format!("{err} {err:?}").contains("SECRET"), "{name}");
        }
        let missing = std::env::temp_dir().join("no_such_cookie_file_here");
        assert!(matches!(
            read_cookie_file(&missing),
            Err(Error::CookieFile { .. })
        ));
    }
}
