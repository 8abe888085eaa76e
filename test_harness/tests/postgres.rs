//! `PgCluster` and the development scripts it runs.

use std::path::Path;
use std::process::{Command, Output};

use erlang_cnode_test_harness::PgCluster;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether process `pid` exists and is not a zombie (a container's init may
/// never reap the daemonised postmaster).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // pid (comm) state …; comm may hold spaces and parentheses.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state, Some(rest) if rest.starts_with('Z'))
}

fn postmaster_pid(pg: &PgCluster) -> u32 {
    let path = pg.dir().join("data/postmaster.pid");
    let contents = std::fs::read_to_string(&path).expect("postmaster.pid reads");
    contents
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}: {contents:?}", path.display()))
}

#[test]
fn runs_sql_and_reports_errors_on_stderr() {
    let pg = PgCluster::start();
    let out = pg.psql(
        "postgres",
        "SELECT 1 AS one;\nSELECT 1/0;\nSELECT 2 AS two;\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        " one \n-----\n   1\n(1 row)\n\n two \n-----\n   2\n(1 row)\n\n"
    );
    assert!(
        text(&out.stderr).contains("ERROR:  division by zero"),
        "{out:?}"
    );
}

#[test]
fn listens_on_its_socket_only() {
    let pg = PgCluster::start();
    let sql = format!(
        "SELECT current_setting('listen_addresses') = '' \
         AND current_setting('port')::int = {} AS ok;",
        pg.port()
    );
    let out = pg.psql("postgres", &sql);
    assert_eq!(text(&out.stdout), " ok \n----\n t\n(1 row)\n\n", "{out:?}");
    assert!(pg
        .socket_dir()
        .join(format!(".s.PGSQL.{}", pg.port()))
        .exists());
}

#[test]
fn psql_file_echoes_like_pg_regress_and_passes_variables() {
    let pg = PgCluster::start();
    let file = pg.dir().join("vars.sql");
    std::fs::write(&file, "SELECT :'greeting' AS greeting;\nSELECT 1/0;\n").unwrap();
    let out = pg.psql_file("postgres", &file, &["-v", "greeting=hello"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        "SELECT :'greeting' AS greeting;\n greeting \n----------\n hello\n(1 row)\n\n\
         SELECT 1/0;\nERROR:  division by zero\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn creates_databases_with_any_name() {
    let pg = PgCluster::start();
    let name = "odd \"name\"";
    pg.create_db(name);
    let out = pg.psql(name, "SELECT current_database();");
    assert!(text(&out.stdout).contains(" odd \"name\"\n"), "{out:?}");
}

#[test]
fn log_holds_the_server_log() {
    let pg = PgCluster::start();
    assert!(
        pg.log()
            .contains("database system is ready to accept connections"),
        "{}",
        pg.log()
    );
}

#[test]
fn clusters_side_by_side_get_their_own_port_and_directory() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.socket_dir(), b.socket_dir());
    for pg in [&a, &b] {
        let out = pg.psql("postgres", "SELECT current_setting('data_directory');");
        let data = pg.dir().join("data");
        assert!(
            text(&out.stdout).contains(data.to_str().unwrap()),
            "{out:?}"
        );
    }
}

#[test]
fn drop_stops_the_server_and_removes_the_directory() {
    let pg = PgCluster::start();
    let dir = pg.dir().to_owned();
    let pid = postmaster_pid(&pg);
    assert!(alive(pid));
    drop(pg);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!alive(pid), "postmaster {pid} still runs");
}

fn script(name: &str, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bin").join(name);
    Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", path.display()))
}

#[test]
fn scripts_explain_themselves() {
    for name in [
        "start-postgres",
        "stop-postgres",
        "reset-postgres",
        "create-testdb",
        "setup-elixir",
    ] {
        let out = script(name, &["--help"]);
        assert!(out.status.success(), "{name} --help: {out:?}");
        let help = text(&out.stdout);
        assert!(help.starts_with(&format!("Usage: {name} ")), "{help}");
        if name != "setup-elixir" {
            for word in [
                "ERLANG_CNODE_PG_DIR",
                "ERLANG_CNODE_PG_PORT",
                "--dir",
                "--port",
            ] {
                assert!(help.contains(word), "{name} --help lacks {word}:\n{help}");
            }
        }
    }
}

#[test]
fn scripts_reject_bad_arguments() {
    for (name, args) in [
        ("start-postgres", &["--bogus"][..]),
        ("stop-postgres", &["--port", "http"][..]),
        ("create-testdb", &["one", "two"][..]),
        ("setup-elixir", &["--name", "no spaces please"][..]),
    ] {
        let out = script(name, args);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {out:?}");
        assert!(text(&out.stderr).contains(&format!("Try '{name} --help'")));
    }
}
