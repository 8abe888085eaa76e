//! Backend internals that SQL cannot reach directly: SQLSTATE encoding,
//! the jsonb conversion of awkward values, and the latch wait. Everything
//! SQL can see is tested in `pg_extension/regress`.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use std::time::{Duration, Instant};

    use erlang_cnode_node::{Interest, Wait};
    use pgrx::prelude::*;

    use crate::error::SqlError;
    use crate::jsonb;
    use crate::latch::LatchWait;

    #[pg_test]
    fn custom_sqlstates_reach_plpgsql_handlers() {
        // Raised through the real path of a V1 function, inside a
        // subtransaction, and caught by its SQLSTATE.
        Spi::run(
            "CREATE FUNCTION pg_temp.state_of(node text) RETURNS text LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM erlang_connect(node, 'cookie'); RETURN 'none'; \
             EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$",
        )
        .unwrap();
        let state = |node: &str| {
            Spi::get_one::<String>(&format!("SELECT pg_temp.state_of('{node}')"))
                .unwrap()
                .unwrap()
        };
        assert_eq!(state("not a node"), "22023");
        assert_eq!(state("nobody@no-such-host.invalid"), "08N01");
        // The backend goes on working after each.
        assert_eq!(state("again@no-such-host.invalid"), "08N01");
    }

    #[pg_test]
    fn jsonb_round_trips_awkward_values() {
        for json in [
            r#"[1, 2, {"$tail": 3}]"#,
            r#"{"$binary": "AAE="}"#,
            "123456789012345678901234567890",
            "-9223372036854775808",
            "0.1",
            "7.0",
            "42",
            r#""bare string""#,
            "null",
            "true",
            "[]",
            "{}",
            r#"{"$map": [[{"$atom": "a"}, 1]]}"#,
            r#"{"a": "é", "b": [null, true], "c": {"d": [[], {}]}}"#,
        ] {
            let term = jsonb::term_of(json, "test").unwrap();
            // Built as jsonb directly, and read back from the jsonb value
            // itself: the same term; its text form too.
            let datum = jsonb::datum_of(&term, "test@host").unwrap();
            let read = unsafe { jsonb::term_of_datum(datum, "test") }.unwrap();
            assert_eq!(read, term, "{json}");
            let text = unsafe { jsonb::text_of(datum) }.unwrap();
            assert_eq!(jsonb::term_of(&text, "test").unwrap(), term, "{json}");
        }
    }

    #[pg_test]
    fn a_latch_wait_reports_ready_and_times_out() {
        let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let soon = Instant::now() + Duration::from_millis(200);
        // Nothing to read: times out (possibly after spurious wakeups).
        let mut ready = LatchWait
            .wait(reader.as_raw_fd(), Interest::Read, soon)
            .unwrap();
        while ready && Instant::now() < soon {
            ready = LatchWait
                .wait(reader.as_raw_fd(), Interest::Read, soon)
                .unwrap();
        }
        assert!(!ready);
        writer.write_all(b"x").unwrap();
        let later = Instant::now() + Duration::from_secs(5);
        assert!(LatchWait
            .wait(reader.as_raw_fd(), Interest::Read, later)
            .unwrap());
    }

    #[pg_test]
    fn a_latch_wait_on_several_sockets_says_which_is_ready() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let (quiet, _quiet_writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (busy, mut busy_writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let fds = [quiet.as_raw_fd(), busy.as_raw_fd()];
        // Nothing to read: times out (possibly after spurious wakeups).
        let soon = Instant::now() + Duration::from_millis(200);
        while Instant::now() < soon {
            if LatchWait.wait_any(&fds, soon).unwrap().is_none() {
                break;
            }
        }
        assert!(Instant::now() >= soon || LatchWait.wait_any(&fds, soon).unwrap().is_none());
        busy_writer.write_all(b"x").unwrap();
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(LatchWait.wait_any(&fds, later).unwrap(), Some(1));
    }

    #[pg_test]
    fn errors_carry_their_sqlstate() {
        assert_eq!(SqlError::invalid("x").sqlstate(), "22023");
        let e = SqlError::from(erlang_cnode_node::Error::WrongCookie { node: "a@b".into() });
        assert_eq!(e.sqlstate(), "08N06");
        assert!(e.message().contains("a@b"));
        // ERRCODE_QUERY_CANCELED is MAKE_SQLSTATE('5','7','0','1','4').
        assert_eq!(
            crate::error::sqlstate(b"57014"),
            pgrx::PgSqlErrorCode::ERRCODE_QUERY_CANCELED as i32
        );
    }
}
