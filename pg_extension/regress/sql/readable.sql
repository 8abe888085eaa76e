-- Reading what real OTP functions return, one call each.
SELECT erlang_connect(:'node', :'cookie');
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
-- A nested iolist (io_lib:format's result) and a charlist as text.
SELECT erlang_string(erlang_call(:'node', 'io_lib', 'format',
    '["User ~s@~s successfully registered", [[97, 108, 105, 99, 101], "example.org"]]'));
SELECT erlang_string(erlang_call(:'node', 'erlang', 'atom_to_list', '[{"$atom": "élan"}]'));
-- An application's description, from application:which_applications/0.
SELECT erlang_string(app->'$tuple'->1) AS description
FROM jsonb_array_elements(erlang_call(:'node', 'application', 'which_applications')) AS app
WHERE app->'$tuple'->0 = '{"$atom": "kernel"}';
-- A proplist (erlang:memory/0) as an object to query.
SELECT (m->>'total')::bigint > 0 AS total, m ? 'processes' AS processes, jsonb_typeof(m) AS kind
FROM erlang_proplist(erlang_call(:'node', 'erlang', 'memory')) AS m;
-- A keyword list, and an Elixir struct (a map with atom keys).
SELECT erlang_proplist('[{"$tuple": [{"$atom": "timeout"}, 5000]}, {"$tuple": [{"$atom": "name"}, "ada"]}, {"$atom": "verbose"}]');
SELECT erlang_proplist('{"$map": [[{"$atom": "__struct__"}, {"$atom": "Elixir.Date"}], [{"$atom": "year"}, 2026], [{"$atom": "month"}, 12], [{"$atom": "calendar"}, {"$atom": "Elixir.Calendar.ISO"}]]}');
-- A record: file:read_file_info/1's #file_info{}.
SELECT r->'type' AS type, (r->>'size')::bigint >= 0 AS size
FROM erlang_record(erlang_call(:'node', 'file', 'read_file_info', '["/"]')->'$tuple'->1,
    ARRAY['size', 'type', 'access', 'atime', 'mtime', 'ctime', 'mode', 'links',
          'major_device', 'minor_device', 'inode', 'uid', 'gid']) AS r;
-- Any term in Erlang syntax, as ~p prints it.
SELECT erlang_text('{"$tuple": [{"$atom": "ok"}, [85, 115, 101, 114], "bin", {"$map": [[{"$atom": "a"}, 1]]}, [1, 2, 3], {"$pid": {"node": "app@host", "id": 85, "serial": 0, "creation": 1}}]}');
SELECT erlang_text(erlang_call(:'node', 'erlang', 'make_tuple', '[2, [108, 105, 98, 47, 101, 110, 117, 109, 46, 101, 120]]'));
SELECT erlang_text('[{"$binary": "YQ1i"}, {"$binary": "6Q=="}, {"$atom": "ñandú"}, {"$atom": "Él"}, {"$binary": "AQI="}]');
SELECT erlang_text(erlang_call(:'node', 'erlang', 'list_to_atom', '[[97, 0, 98]]'));
-- Shapes that are not what was asked for are refused, saying why.
SELECT erlang_string('{"$atom": "ok"}');
SELECT erlang_string('42');
SELECT erlang_string('[104, 0, 105]');
SELECT erlang_proplist('[{"$tuple": ["$atom", 1]}]');
SELECT erlang_string('[104, -1]');
SELECT erlang_proplist('[{"$tuple": [{"$atom": "a"}, 1]}, {"$tuple": [{"$atom": "a"}, 2]}]');
SELECT erlang_proplist('[{"$tuple": [1, 2]}]');
SELECT erlang_record('{"$tuple": [{"$atom": "user"}, "ada"]}', ARRAY['name', 'age']);
SELECT erlang_record('{"$tuple": [{"$atom": "user"}, "ada"]}', ARRAY[NULL]);
SELECT erlang_text(NULL) IS NULL AS strict;
-- Exceptions as data: erlang_try_call gives them back instead of raising.
SELECT erlang_try_call(:'node', 'erlang', 'abs', '[-3]');
SELECT r->'error'->'class' AS class, r->'error'->'reason' AS reason, jsonb_typeof(r->'error'->'stack') AS stack
FROM erlang_try_call(:'node', 'erlang', 'error',
    '[{"$tuple": [{"$atom": "user_already_exists"}, "ada"]}]') AS r;
SELECT erlang_try_call(:'node', 'erlang', 'throw', '[{"$atom": "not_found"}]');
SELECT erlang_try_call(:'node', 'erlang', 'exit', '[{"$atom": "shutdown"}]');
-- A node that cannot be reached still raises; a mistyped name says so
-- (before any cookie is looked for).
SELECT erlang_try_call(:'missing_node', 'erlang', 'abs', '[1]');
SELECT erlang_connect(:'missing_node');
-- After a caught ERROR, the reason as jsonb, to branch on in PL/pgSQL.
DO $$
DECLARE
    reason jsonb;
BEGIN
    PERFORM erlang_call(current_setting('regress.node'), 'erlang', 'error',
        '[{"$tuple": [{"$atom": "user_already_exists"}, "ada"]}]');
EXCEPTION WHEN SQLSTATE 'ER001' THEN
    reason := erlang_last_error()->'reason';
    IF reason->'$tuple'->0 = '{"$atom": "user_already_exists"}' THEN
        RAISE NOTICE 'exists already: %', erlang_string(reason->'$tuple'->1);
    END IF;
END
$$;
SELECT erlang_last_error()->>'class' AS class;
-- DETAIL prints charlists as strings, as ~p does.
SELECT erlang_call(:'node', 'erlang', 'exit', '[{"$tuple": [{"$atom": "file"}, [108, 105, 98, 47, 101, 110, 117, 109, 46, 101, 120]]}]');
-- A timeout names the call and its limit.
SELECT erlang_call(:'node', 'timer', 'sleep', '[5000]', 100);
SELECT erlang_gen_call(:'node', 'regress_server', '{"$tuple": [{"$atom": "sleep"}, 5000]}', 100);
-- Any process as a target, given as jsonb.
CREATE TEMP TABLE server_pid AS
SELECT erlang_call(:'node', 'erlang', 'whereis', '[{"$atom": "regress_server"}]') AS pid;
SELECT erlang_send(:'node', pid, '{"$atom": "to_the_pid"}') FROM server_pid;
SELECT erlang_gen_call(:'node', pid, '{"$tuple": [{"$atom": "echo"}, "by pid"]}') FROM server_pid;
SELECT erlang_call(:'node', 'global', 'register_name', jsonb_build_array('{"$atom": "regress_global"}'::jsonb, pid)) FROM server_pid;
SELECT erlang_gen_call(:'node', '{"$tuple": [{"$atom": "global"}, {"$atom": "regress_global"}]}'::jsonb, '{"$tuple": [{"$atom": "echo"}, "by global name"]}');
SELECT erlang_gen_call(:'node', '{"$tuple": [{"$atom": "via"}, {"$atom": "global"}, {"$atom": "regress_global"}]}'::jsonb, '{"$tuple": [{"$atom": "echo"}, "by via"]}');
SELECT erlang_send(:'node', '{"$tuple": [{"$atom": "global"}, {"$atom": "regress_global"}]}'::jsonb, '{"$atom": "to_the_global_name"}');
SELECT erlang_send(:'node', jsonb_build_object('$tuple', jsonb_build_array('{"$atom": "regress_server"}'::jsonb, jsonb_build_object('$atom', :'node'))), '{"$atom": "to_name_at_node"}');
SELECT m FROM jsonb_array_elements(erlang_gen_call(:'node', 'regress_server', '{"$atom": "seen"}')) AS m
WHERE m::text LIKE '%to_%';
-- The node's own timeout comes a little before ours.
SELECT erlang_gen_call(:'node', '{"$tuple": [{"$atom": "global"}, {"$atom": "regress_global"}]}'::jsonb, '{"$tuple": [{"$atom": "sleep"}, 300]}', 50);
-- A global name nobody has, and what is no target.
SELECT erlang_gen_call(:'node', '{"$tuple": [{"$atom": "global"}, {"$atom": "nobody_here"}]}'::jsonb, '{"$atom": "hello"}');
SELECT erlang_send(:'node', '42'::jsonb, '1');
-- A name given as text that is plainly JSON, or a pid's text, is refused,
-- not made an atom.
SELECT erlang_send(:'node', '{"$pid": {"node": "a@b", "id": 1, "serial": 0, "creation": 0}}', '1');
SELECT erlang_send(:'node', '<0.85.0>', '1');
-- A role with USAGE on a server: its allow-list decides, and only names.
CREATE SERVER readable_app FOREIGN DATA WRAPPER erlang_cnode
    OPTIONS (node :'node', allow 'erlang:abs/1, gen_call:regress_server');
CREATE USER MAPPING FOR PUBLIC SERVER readable_app OPTIONS (cookie :'cookie');
CREATE ROLE readable_user;
GRANT USAGE ON FOREIGN SERVER readable_app TO readable_user;
GRANT SELECT ON server_pid TO readable_user;
SET ROLE readable_user;
SELECT erlang_try_call('readable_app', 'erlang', 'abs', '[-2]');
SELECT erlang_try_call('readable_app', 'os', 'getpid');
SELECT erlang_gen_call('readable_app', '{"$atom": "regress_server"}'::jsonb, '{"$tuple": [{"$atom": "echo"}, "allowed"]}');
SELECT erlang_gen_call('readable_app', pid, '{"$atom": "seen"}') FROM server_pid;
SELECT erlang_gen_call('readable_app', '{"$tuple": [{"$atom": "global"}, {"$atom": "regress_global"}]}'::jsonb, '{"$atom": "seen"}');
SELECT erlang_send('readable_app', '{"$atom": "regress_server"}'::jsonb, '1');
RESET ROLE;
DROP USER MAPPING FOR PUBLIC SERVER readable_app;
DROP SERVER readable_app;
DROP ROLE readable_user;
-- One connection per real node: another host name for it is refused,
-- saying which name the node has; a connection (and a call under way on
-- it) to the node under its own name is left alone.
SELECT erlang_call_async(:'node', 'regress_server', 'echo_after', '[300, "still here"]') AS req \gset
SELECT erlang_connect(regexp_replace(:'node', '@.*', '@localhost'), :'cookie');
SELECT erlang_await(:req);
SELECT erlang_connect(regexp_replace(:'long_node', '@.*', '@localhost'), :'long_cookie');
-- A failed erlang_connect leaves the working connection alone.
SELECT erlang_connect(:'node', 'not-the-cookie');
SELECT erlang_call(:'node', 'erlang', 'abs', '[-7]');
-- A node that stopped is not listed (its connection is checked first).
SELECT erlang_connect(:'spare_node', :'spare_cookie');
SELECT count(*) AS listed FROM erlang_connections() WHERE node = :'spare_node';
SELECT erlang_cast(:'spare_node', 'erlang', 'halt', '[]');
SELECT set_config('regress.spare', :'spare_node', false) IS NOT NULL AS ok;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM erlang_connections()
                              WHERE node = current_setting('regress.spare'));
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT count(*) AS listed FROM erlang_connections() WHERE node = :'spare_node';
-- Terms the mapping would change are refused, not altered.
SELECT erlang_call(:'node', 'erlang', 'bit_size', '[{"$bitstring": {"base64": "/w==", "bits": 3}}]');
SELECT erlang_call(:'node', 'erlang', 'is_pid', '[{"$pid": {"node": "", "id": 1, "serial": 0, "creation": 0}}]');
-- The last exception is its role's, and DISCARD ALL forgets it.
SELECT erlang_try_call(:'node', 'erlang', 'abs', '[1]') IS NOT NULL AS ok;
SELECT erlang_call(:'node', 'erlang', 'error', '[{"$atom": "last_one"}]');
SELECT erlang_last_error()->'reason' AS reason;
CREATE ROLE readable_other;
SET ROLE readable_other;
SELECT erlang_last_error() IS NULL AS not_for_others;
RESET ROLE;
DROP ROLE readable_other;
DISCARD ALL;
SELECT erlang_last_error() IS NULL AS forgotten;
