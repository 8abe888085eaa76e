# shellcheck shell=bash
# Sourced by the scripts beside it: messages, running PostgreSQL's programs as
# the cluster's owner, and the cluster's locations with their options.
#
# A script defines `usage` before sourcing this file; a PostgreSQL script may
# define `script_arg ARG` to take arguments of its own
# (return 1 to reject one), then calls `parse_pg_args "$@"`.
# shellcheck disable=SC2034 # the pg_* variables are for the sourcing scripts

script="${0##*/}"

say() { echo "$script: $*"; }
die() { echo "$script: $*" >&2; exit 1; }
usage_error() { echo "$script: $*" >&2; echo "Try '$script --help'." >&2; exit 2; }
script_arg() { return 1; }

# PostgreSQL refuses to run as root: root runs the server as `postgres`, any
# other user as itself. From / so that postgres need not see the caller's
# working directory.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pg_dir="${ERLANG_CNODE_PG_DIR:-/var/tmp/erlang_cnode-pg}"
pg_port="${ERLANG_CNODE_PG_PORT:-54315}"

# The help text for the options and variables every PostgreSQL script shares.
pg_usage_common() {
    cat <<USAGE
  --dir DIR    the cluster directory (default \$ERLANG_CNODE_PG_DIR, else
               /var/tmp/erlang_cnode-pg): data in DIR/data, the unix socket in
               DIR/socket, the server log in DIR/postgres.log
  --port PORT  the port, which also names the socket (default
               \$ERLANG_CNODE_PG_PORT, else 54315)
  -h, --help   show this help

Run as root, the server runs as the postgres user, which must own DIR (it is
created and handed over) and be able to reach it: keep it out of /root.
PG_CONFIG names the pg_config of the PostgreSQL to use (default: the one on PATH).
USAGE
}

parse_pg_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --dir) [ $# -ge 2 ] || usage_error "--dir needs a directory"; pg_dir="$2"; shift 2 ;;
            --dir=*) pg_dir="${1#--dir=}"; shift ;;
            --port) [ $# -ge 2 ] || usage_error "--port needs a number"; pg_port="$2"; shift 2 ;;
            --port=*) pg_port="${1#--port=}"; shift ;;
            *) script_arg "$1" || usage_error "unexpected argument: $1"; shift ;;
        esac
    done
    if ! [[ "$pg_port" =~ ^[0-9]{1,5}$ ]] || [ "$pg_port" -lt 1 ] || [ "$pg_port" -gt 65535 ]; then
        usage_error "the port must be a number from 1 to 65535, not '$pg_port'"
    fi
    [ -n "$pg_dir" ] || usage_error "the cluster directory must not be empty"
    # pg_ctl hands its options to a shell: keep paths to plain words.
    [[ "$pg_dir" =~ ^[A-Za-z0-9_./+-]+$ ]] \
        || usage_error "the cluster directory may hold only letters, digits and _./+-: '$pg_dir'"
    pg_dir="$(realpath -m -- "$pg_dir")"
    [ "$pg_dir" != / ] || usage_error "the cluster directory must not be /"
    pg_bin="$("${PG_CONFIG:-pg_config}" --bindir)" \
        || die "pg_config not found: run scripts/setup (PostgreSQL 15 from Debian) or set PG_CONFIG"
    pg_data="$pg_dir/data"
    pg_socket="$pg_dir/socket"
    pg_log="$pg_dir/postgres.log"
}

pg_running() {
    [ -f "$pg_data/PG_VERSION" ] && as_owner "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1
}

pg_ready() {
    "$pg_bin/pg_isready" -q -h "$pg_socket" -p "$pg_port" -U postgres -d postgres
}

# How to connect to the running server, from the port and socket directory it
# recorded in postmaster.pid (lines 4 and 5), which may differ from ours.
# Takes the database to name.
pg_print_connect() {
    local port socket
    port="$(as_owner sed -n 4p "$pg_data/postmaster.pid")"
    socket="$(as_owner sed -n 5p "$pg_data/postmaster.pid")"
    say "connect with: psql -h $socket -p $port -U postgres $1"
}
