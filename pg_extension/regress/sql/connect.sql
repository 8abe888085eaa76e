-- Connecting: with a cookie, with the configured cookie, on first use, to
-- nodes started with -sname and with -name.
SELECT erlang_connect(:'node', :'cookie');
SELECT node, calls, errors FROM erlang_connections();
SELECT erlang_ping(:'node');
SELECT erlang_disconnect(:'node');
SELECT erlang_disconnect(:'node');
SELECT count(*) FROM erlang_connections();
-- The configured cookie (a superuser-only setting).
SET erlang_cnode.cookie = :'cookie';
SELECT erlang_connect(:'node');
SELECT erlang_disconnect(:'node');
-- erlang_call connects on first use; called as the original README did.
SELECT erlang_call(:'node', 'erlang', 'node', '[]'::jsonb);
-- A node started with -name.
SET erlang_cnode.cookie = :'long_cookie';
SELECT erlang_call(:'long_node', 'erlang', 'node');
SELECT erlang_ping(:'long_node');
-- This backend names itself after the kind of name each node has.
SELECT node, local_node ~ '@127\.0\.0\.1$' AS long_name, calls, errors,
       connected_since <= last_used AND last_used <= now() + interval '1 minute' AS times_ok
FROM erlang_connections() ORDER BY node;
-- Connecting again replaces the connection.
SELECT erlang_connect(:'long_node', :'long_cookie');
SELECT node, calls FROM erlang_connections() ORDER BY node;
RESET erlang_cnode.cookie;
