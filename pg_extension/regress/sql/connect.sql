-- Connecting: with a cookie, through a server and its user mapping, on
-- first use, to nodes started with -sname and with -name.
SELECT erlang_connect(:'node', :'cookie');
SELECT node, calls, errors FROM erlang_connections();
SELECT erlang_ping(:'node');
SELECT erlang_disconnect(:'node');
SELECT erlang_disconnect(:'node');
SELECT count(*) FROM erlang_connections();
-- A server names the node; the user mapping holds the cookie.
CREATE SERVER regress_short FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node :'node');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_short OPTIONS (cookie :'cookie');
SELECT erlang_connect('regress_short');
SELECT node FROM erlang_connections();
SELECT erlang_disconnect('regress_short');
-- erlang_call connects on first use; called as the original README did,
-- and through the server.
SELECT erlang_call('regress_short', 'erlang', 'node', '[]'::jsonb);
SELECT erlang_call(:'node', 'erlang', 'node', '[]'::jsonb);
-- A node started with -name, with a mapping for PUBLIC.
CREATE SERVER regress_long FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node :'long_node');
CREATE USER MAPPING FOR PUBLIC SERVER regress_long OPTIONS (cookie :'long_cookie');
SELECT erlang_call('regress_long', 'erlang', 'node');
SELECT erlang_ping('regress_long');
SELECT erlang_ping(:'long_node');
-- This backend names itself after the kind of name each node has.
SELECT node, local_node ~ '@127\.0\.0\.1$' AS long_name, calls, errors,
       connected_since <= last_used AND last_used <= now() + interval '1 minute' AS times_ok
FROM erlang_connections() ORDER BY node;
-- Connecting again replaces the connection.
SELECT erlang_connect(:'long_node', :'long_cookie');
SELECT node, calls FROM erlang_connections() ORDER BY node;
-- A user mapping altered to another cookie: the connection made with the
-- old one is not used again (the next call connects with the new one).
ALTER USER MAPPING FOR PUBLIC SERVER regress_long OPTIONS (SET cookie 'not-the-cookie');
SELECT erlang_call('regress_long', 'erlang', 'node');
ALTER USER MAPPING FOR PUBLIC SERVER regress_long OPTIONS (SET cookie :'long_cookie');
SELECT erlang_call('regress_long', 'erlang', 'node');
-- DISCARD ALL (as a pooler resets a session) closes every connection.
DISCARD ALL;
SELECT count(*) FROM erlang_connections();
DROP SERVER regress_short, regress_long CASCADE;
