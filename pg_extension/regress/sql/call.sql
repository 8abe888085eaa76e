-- erlang_call: results, each exception class, timeouts.
SELECT erlang_connect(:'node', :'cookie');
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
SELECT erlang_call(:'node', 'lists', 'reverse', '[[1, 2, 3]]');
SELECT erlang_call(:'node', 'maps', 'from_list', '[[{"$tuple": ["a", 1]}, {"$tuple": [{"$atom": "b"}, 2.5]}]]');
SELECT erlang_call(:'node', 'string', 'uppercase', '["héllo"]');
SELECT erlang_call(node => :'node', module => 'erlang', function => 'max',
                   args => '[1, 2]', timeout_ms => 5000);
-- Functions that print to their group leader do not hang the call.
SELECT erlang_call(:'node', 'io', 'format', '["printed ~p~n", [[1]]]');
-- Exceptions: the class picks the SQLSTATE, DETAIL holds the reason.
\set VERBOSITY verbose
SELECT erlang_call(:'node', 'nosuch', 'f');
SELECT erlang_call(:'node', 'erlang', 'exit', '[{"$tuple": [{"$atom": "shutdown"}, "bye"]}]');
SELECT erlang_call(:'node', 'erlang', 'throw', '[{"$tuple": [{"$atom": "thrown"}, 42]}]');
\set VERBOSITY terse
SELECT erlang_call(:'node', 'erlang', 'binary_to_atom', '[1]');
\set VERBOSITY default
-- PL/pgSQL can catch them by SQLSTATE.
DO $$
BEGIN
    PERFORM erlang_call(current_setting('regress.node'), 'erlang', 'throw', '[1]');
EXCEPTION WHEN SQLSTATE 'ER003' THEN
    RAISE NOTICE 'caught a throw: %', SQLERRM;
END
$$;
-- Timeouts: per call, by setting, and statement_timeout. The late reply
-- of the first is discarded, never returned to a later call.
SELECT erlang_call(:'node', 'timer', 'sleep', '[1000]', 100);
SELECT pg_sleep(1.2);
SELECT erlang_call(:'node', 'erlang', 'node');
SET erlang_cnode.call_timeout = 100;
SELECT erlang_call(:'node', 'timer', 'sleep', '[1000]');
RESET erlang_cnode.call_timeout;
SET statement_timeout = '200ms';
SELECT erlang_call(:'node', 'timer', 'sleep', '[60000]');
RESET statement_timeout;
SELECT erlang_call(:'node', 'erlang', 'node');
SELECT node, calls, errors FROM erlang_connections();
