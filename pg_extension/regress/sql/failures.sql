-- Every failure is an ERROR with its own SQLSTATE that names the node, and
-- the backend and its other connections keep working.
\set VERBOSITY verbose
SELECT erlang_call('not a node', 'erlang', 'node');
SELECT erlang_call(NULL, 'erlang', 'node');
SELECT erlang_call(:'node', '', 'node');
SELECT erlang_call(:'node', 'erlang', 'node', '{"a": 1}');
SELECT erlang_call(:'node', 'erlang', 'node', '[{"$atom": 5}]');
SELECT erlang_call(:'node', 'erlang', 'node', NULL);
SELECT erlang_call(:'node', 'erlang', 'node', '[]', 0);
SELECT erlang_connect('nobody@no-such-host.invalid', 'cookie');
SELECT erlang_connect(:'missing_node', 'cookie');
SELECT erlang_connect(:'node', 'not-the-cookie');
SELECT erlang_ping(:'missing_node');
-- A node that answers with something that is not a term.
SELECT erlang_connect(:'fake_node', :'fake_cookie');
SELECT erlang_call(:'fake_node', 'erlang', 'node');
\set VERBOSITY default
SELECT erlang_connect(:'node', :'cookie');
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
-- A reply over erlang_cnode.max_message_size.
SET erlang_cnode.max_message_size = '1kB';
SELECT erlang_call(:'node', 'binary', 'copy', '["x", 2000]');
RESET erlang_cnode.max_message_size;
SELECT length(erlang_call(:'node', 'binary', 'copy', '["x", 2000]')::text);
-- A node that dies during the call.
SELECT erlang_connect(:'spare_node', :'spare_cookie');
SELECT erlang_call(:'spare_node', 'erlang', 'halt');
-- The other connection is untouched.
SELECT erlang_call(:'node', 'erlang', 'node');
-- A node that restarts between calls: its connection is dropped by the
-- node; the next call notices and connects again before it sends.
SELECT set_config('regress.creation',
    erlang_call(:'node', 'erlang', 'system_info', '[{"$atom": "creation"}]')::text, false) IS NOT NULL AS ok;
SELECT erlang_cast(:'node', 'init', 'restart');
DO $$
BEGIN
    FOR i IN 1..400 LOOP
        BEGIN
            IF erlang_call(current_setting('regress.node'), 'erlang', 'system_info',
                           '[{"$atom": "creation"}]')::text <> current_setting('regress.creation') THEN
                RETURN;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            NULL; -- still restarting
        END;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'the node did not come back';
END
$$;
SELECT erlang_call(:'node', 'erlang', 'node');
-- A term too deep to send once wrapped in its call is 22023 before
-- anything is sent; a reply too deep to read is 54000 (the node broke no
-- protocol). Neither drops the connection.
SELECT set_config('regress.since', connected_since::text, false) IS NOT NULL AS ok
FROM erlang_connections() WHERE node = :'node';
\set VERBOSITY verbose
SELECT erlang_call(:'node', 'erlang', 'length', ('[' || repeat('[', 1000) || repeat(']', 1000) || ']')::jsonb);
SELECT erlang_call(:'node', 'regress_server', 'nest', '[1100]');
\set VERBOSITY default
SELECT jsonb_typeof(erlang_call(:'node', 'regress_server', 'nest', '[900]')) AS shallow_enough;
SELECT connected_since::text = current_setting('regress.since') AS same_connection
FROM erlang_connections() WHERE node = :'node';
