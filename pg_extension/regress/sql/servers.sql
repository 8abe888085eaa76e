-- Servers, user mappings and allow-lists: who may call what, for every
-- function, with two nodes that have different cookies.
-- The validator: unknown options, bad values and malformed entries are
-- errors, and a cookie is never echoed.
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (nodes 'a@b');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (allow 'erlang:node/0');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'no-at-sign');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', allow 'erlang:node/x');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', allow 'erlang');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', allow 'erlang:node/0,,lists:sort/1');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', allow 'os:cmd /1');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', allow 'service:demo+funs');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', call_timeout 'soon');
CREATE SERVER bad FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b', max_message_size '-1');
ALTER FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node 'a@b');
-- Two servers, one per node, each node with its own cookie.
CREATE SERVER app FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node :'node',
    allow ' erlang:node/0 , lists:reverse/1, lists:map/2, regress_server:record/1,
           send:regress_server, gen_call:regress_server, service:demo ');
CREATE SERVER chat FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node :'spare_node',
    allow 'erlang:node/0, lists:*, timer:sleep, lists:map/2+funs, send:regress_server+funs',
    call_timeout '500ms');
ALTER SERVER chat OPTIONS (SET allow 'os:cmd/x');
CREATE USER MAPPING FOR PUBLIC SERVER app OPTIONS (cookie E'two\nlines');
CREATE USER MAPPING FOR PUBLIC SERVER app OPTIONS (password 'x');
CREATE ROLE regress_nobody;
CREATE ROLE regress_analyst;
CREATE ROLE regress_other;
CREATE ROLE regress_member IN ROLE erlang_cnode_user;
CREATE USER MAPPING FOR regress_analyst SERVER app OPTIONS (cookie :'cookie');
CREATE USER MAPPING FOR regress_member SERVER app OPTIONS (cookie :'cookie');
CREATE USER MAPPING FOR PUBLIC SERVER chat OPTIONS (cookie :'spare_cookie');
GRANT USAGE ON FOREIGN SERVER app, chat TO regress_analyst;
GRANT USAGE ON FOREIGN SERVER app TO regress_other, regress_member;
-- The node's cookie, for the tests below, from a table only this session's
-- superuser reads (a setting would be readable by every role).
CREATE TEMP TABLE secret AS SELECT :'cookie'::text AS cookie;
CREATE FUNCTION pg_temp.secret() RETURNS text LANGUAGE sql SECURITY DEFINER
    AS 'SELECT cookie FROM secret';
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
-- Runs one statement as a role; 'ok' or the SQLSTATE.
CREATE FUNCTION pg_temp.try(who text, statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET ROLE %I', who);
    EXECUTE statement;
    RESET ROLE;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- Every function, through the server and by node name, as a role with no
-- grants, a role with USAGE and a mapping (allow-listed), and a member of
-- erlang_cnode_user. Calls that reach a node without the Elixir app give
-- ER001 (undef): the permission check passed.
CREATE TEMP TABLE matrix (n serial, call text, outcome text);
DO $$
DECLARE
    calls text[] := ARRAY[
        'erlang_connect(%1$L, %2$L)',
        'erlang_connect(%1$L)',
        'erlang_ping(%1$L)',
        'erlang_call(%1$L, ''erlang'', ''node'')',
        'erlang_call(%1$L, ''os'', ''cmd'', ''["id"]'')',
        'erlang_gen_call(%1$L, ''regress_server'', ''{"$tuple": [{"$atom": "echo"}, 1]}'')',
        'erlang_cast(%1$L, ''regress_server'', ''record'', ''["matrix"]'')',
        'erlang_send(%1$L, ''regress_server'', ''"matrix"'')',
        'erlang_service_call(%1$L, ''demo'', ''add'', ''{"a": 1, "b": 2}'')',
        'erlang_services(%1$L)',
        'erlang_call_many(%1$L, ''erlang'', ''node'', ''[[]]'')',
        'erlang_await(erlang_call_async(%1$L, ''erlang'', ''node''))',
        'erlang_multicall(ARRAY[%1$L], ''erlang'', ''node'')',
        'erlang_disconnect(%1$L)',
        'erlang_connections()'];
    c text;
    who text;
    route text;
BEGIN
    FOREACH c IN ARRAY calls LOOP
        FOREACH who IN ARRAY ARRAY['regress_nobody', 'regress_analyst', 'regress_member'] LOOP
            FOREACH route IN ARRAY ARRAY['app', current_setting('regress.node')] LOOP
                INSERT INTO matrix (call, outcome) VALUES (
                    format(c, 'n', 'cookie'),
                    pg_temp.try(who, 'SELECT ' || format(c, route, pg_temp.secret())));
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;
-- Columns: nobody (server, node), analyst (server, node), member (server, node).
SELECT call, string_agg(outcome, ' ' ORDER BY n) AS outcomes
FROM matrix GROUP BY call ORDER BY min(n);
-- What the allow-list refuses, by name, for a role without full access;
-- and the routes around it that an allowed function could open.
SET ROLE regress_analyst;
SELECT erlang_call('app', 'erlang', 'node');
SELECT erlang_call('chat', 'erlang', 'node');
SELECT node FROM erlang_connections() ORDER BY node = :'node' DESC;
SELECT erlang_call('app', 'os', 'cmd', '["id"]');
SELECT erlang_call('app', 'erlang', 'get_cookie');
SELECT erlang_gen_call('app', 'rex', '{"$tuple": [{"$atom": "call"}, {"$atom": "os"}, {"$atom": "getpid"}, [], {"$atom": "user"}]}');
SELECT erlang_call('app', 'lists', 'map', '[{"$fun": {"module": "os", "function": "getenv", "arity": 1}}, ["HOME"]]');
SELECT erlang_send('app', 'init', '{"$tuple": [{"$atom": "stop"}, {"$atom": "stop"}]}');
SELECT erlang_send('app', 'regress_server', '[{"$fun": {"module": "os", "function": "getenv", "arity": 0}}]');
SELECT erlang_send('app', 'regress_server', '{"$map": [[{"$fun": {"module": "os", "function": "getenv", "arity": 0}}, 1]]}');
SELECT erlang_send('chat', 'regress_server', '{"$map": [[{"$fun": {"module": "os", "function": "getenv", "arity": 0}}, 1]]}');
SELECT erlang_call('app', 'lists', 'reverse', '[[1, 2]]');
SELECT erlang_call('app', 'lists', 'reverse', '[[1, 2], []]');
SELECT erlang_cast('app', 'os', 'cmd', '["id"]');
SELECT erlang_service_call('app', 'accounts', 'drop', '{}');
-- Entries for any function of a module, any arity, and with funs.
SELECT erlang_call('chat', 'lists', 'sort', '[[3, 1, 2]]');
SELECT erlang_call('chat', 'timer', 'sleep', '[1]');
SELECT erlang_call('chat', 'lists', 'map', '[{"$fun": {"module": "erlang", "function": "abs", "arity": 1}}, [-1, -2]]');
-- Raw node names and cookies are for members only.
SELECT erlang_call(:'node', 'erlang', 'node');
SELECT erlang_connect('app', 'a-cookie');
-- Limits a role without full access cannot raise: the server's call
-- timeout, the settings.
SELECT erlang_call('chat', 'timer', 'sleep', '[10]', 5000);
SELECT erlang_call('chat', 'timer', 'sleep', '[2000]');
SET erlang_cnode.max_message_size = '1GB';
SET erlang_cnode.call_timeout = '1h';
SET erlang_cnode.node_prefix = 'spoof';
SET erlang_cnode.max_connections = 10000;
RESET ROLE;
-- A server's max_message_size bounds its replies.
ALTER SERVER chat OPTIONS (ADD max_message_size '1kB');
SET ROLE regress_analyst;
SELECT erlang_call('chat', 'lists', 'duplicate', '[2000, 120]');
RESET ROLE;
ALTER SERVER chat OPTIONS (DROP max_message_size);
-- USAGE with another role's mapping only: no cookie to use. A mapping it
-- makes for itself without a cookie lends it nothing (the server OS user's
-- cookie file is for PUBLIC mappings a superuser or owner made).
SET ROLE regress_other;
SELECT erlang_call('app', 'erlang', 'node');
SELECT erlang_call('chat', 'erlang', 'node');
CREATE USER MAPPING FOR regress_other SERVER app;
SELECT erlang_call('app', 'erlang', 'node');
DROP USER MAPPING FOR regress_other SERVER app;
RESET ROLE;
-- Arguments swapped with a server's name as the cookie: refused, nothing
-- echoed, nothing looked up.
SELECT erlang_connect('Xk3@cookiehost.invalid', 'app');
-- Connections are per role: the superuser's is not used after SET ROLE.
SELECT erlang_connect(:'node', :'cookie');
SET ROLE regress_member;
SELECT count(*) FROM erlang_connections();
SELECT erlang_call(:'node', 'erlang', 'node');
RESET ROLE;
SELECT node FROM erlang_connections();
-- A SECURITY DEFINER function calls with its owner's rights, mapping and
-- connections, as everything else in PostgreSQL does.
CREATE FUNCTION public.analyst_node() RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT erlang_call('app', 'erlang', 'node') $$;
ALTER FUNCTION public.analyst_node() OWNER TO regress_analyst;
SET ROLE regress_nobody;
SELECT public.analyst_node();
SELECT erlang_call('app', 'erlang', 'node');
RESET ROLE;
DROP FUNCTION public.analyst_node();
-- At most erlang_cnode.max_connections per backend.
SET erlang_cnode.max_connections = 1;
SELECT erlang_connect(:'spare_node', :'spare_cookie');
RESET erlang_cnode.max_connections;
SELECT erlang_connect(:'spare_node', :'spare_cookie');
-- No cookie readable by a role that should not read it: the settings and
-- catalogues that could hold one, seen by a role with no rights and by one
-- with USAGE but another role's mapping. (The log and pg_dump are checked
-- by the Rust test around this file.)
CREATE TEMP TABLE leaks (who text, place text, hits bigint);
GRANT ALL ON leaks TO PUBLIC;
SELECT set_config('regress.probe', $probe$
    INSERT INTO leaks SELECT current_user, place, count(t) FILTER (WHERE t LIKE '%' || pg_temp.secret() || '%')
    FROM (VALUES ('pg_settings'), ('pg_db_role_setting'), ('pg_roles'), ('pg_user_mappings'),
                 ('pg_foreign_server'), ('pg_stat_activity')) AS p(place)
    LEFT JOIN (
        SELECT 'pg_settings', s::text FROM pg_settings s
        UNION ALL SELECT 'pg_db_role_setting', d::text FROM pg_db_role_setting d
        UNION ALL SELECT 'pg_roles', r::text FROM pg_roles r
        UNION ALL SELECT 'pg_user_mappings', m::text FROM pg_user_mappings m
        UNION ALL SELECT 'pg_foreign_server', f::text FROM pg_foreign_server f
        UNION ALL SELECT 'pg_stat_activity', a::text FROM pg_stat_activity a
    ) AS v(place, t) USING (place) GROUP BY place
$probe$, false) IS NOT NULL AS ok;
SET ROLE regress_nobody;
DO $$ BEGIN EXECUTE current_setting('regress.probe'); END $$;
SHOW erlang_cnode.cookie;
SET ROLE regress_other;
DO $$ BEGIN EXECUTE current_setting('regress.probe'); END $$;
SELECT umuser::regrole, umoptions FROM pg_user_mappings WHERE srvname = 'app' ORDER BY 1;
SET ROLE regress_analyst;
SELECT umuser::regrole, umoptions IS NOT NULL AS own_options_visible FROM pg_user_mappings
WHERE srvname = 'app' AND umuser = 'regress_analyst'::regrole;
SELECT count(*) AS connections, count(*) FILTER (WHERE c::text LIKE '%' || pg_temp.secret() || '%') AS with_cookie
FROM erlang_connections() c;
RESET ROLE;
-- The probe can fail: a superuser does see the mappings' cookies.
DO $$ BEGIN EXECUTE current_setting('regress.probe'); END $$;
SELECT who, place, hits FROM leaks ORDER BY who, place;
-- DISCARD ALL closes the connections of every role of the backend
-- (and, as ever, this session's temporary objects).
SET ROLE regress_analyst;
SELECT erlang_call('app', 'erlang', 'node') IS NOT NULL AS called;
RESET ROLE;
DISCARD ALL;
SET ROLE regress_analyst;
SELECT count(*) FROM erlang_connections();
RESET ROLE;
-- The cookie is no setting any more: not even a superuser can store one
-- where every role could read it (from PostgreSQL 15, which reserves the
-- prefix; 14 keeps such a placeholder, and warns).
ALTER ROLE regress_analyst SET erlang_cnode.cookie = 'x';
DROP SERVER app, chat CASCADE;
DROP ROLE regress_nobody, regress_analyst, regress_other, regress_member;
