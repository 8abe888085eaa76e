-- Many calls in flight on one connection: erlang_call_many,
-- erlang_call_async with erlang_await, erlang_multicall.
SELECT erlang_connect(:'node', :'cookie');
SELECT erlang_connect(:'spare_node', :'spare_cookie');
SELECT erlang_connect(:'long_node', :'long_cookie');
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
-- Results come back in input order although the replies arrive the other
-- way round.
SELECT n, r FROM erlang_call_many(:'node', 'regress_server', 'echo_after',
    '[[300, "first"], [150, "second"], [0, "third"]]') WITH ORDINALITY AS t(r, n);
-- 1,000 calls in flight, joined back to their inputs.
SELECT count(*) AS calls, bool_and(r = to_jsonb(i)) AS all_match
FROM erlang_call_many(:'node', 'erlang', 'abs',
    (SELECT jsonb_agg(jsonb_build_array(-i) ORDER BY i) FROM generate_series(1, 1000) i))
    WITH ORDINALITY AS t(r, i);
-- Stray messages to this node among the replies are dropped.
SELECT r FROM erlang_call_many(:'node', 'regress_server', 'spam', '[[100], [5], [50]]') AS r;
-- Bad input, and nothing to do.
SELECT erlang_call_many(:'node', 'erlang', 'abs', '[1, 2]');
SELECT erlang_call_many(:'node', 'erlang', 'abs', '{"a": 1}');
SELECT erlang_call_many(:'node', 'erlang', 'abs', NULL);
SELECT count(*) FROM erlang_call_many(:'node', 'erlang', 'abs', '[]');
-- The first failure in input order is raised.
SELECT erlang_call_many(:'node', 'erlang', 'abs', '[[1], ["x"], [3]]');
-- One timeout covers the whole batch; what is still running is killed.
SELECT erlang_call_many(:'node', 'timer', 'sleep', '[[10], [60000]]', 300);
-- Async: sent at once, awaited in any order, each once.
CREATE TEMP TABLE sent AS
SELECT i, erlang_call_async(:'node', 'regress_server', 'echo_after',
                            jsonb_build_array(100 * (4 - i), i)) AS id
FROM generate_series(1, 3) i;
SELECT i, erlang_await(id) FROM sent ORDER BY i DESC;
SELECT erlang_await(id) FROM sent WHERE i = 1;
SELECT erlang_await(-1);
-- Both are 22023.
\set VERBOSITY sqlstate
SELECT erlang_await(id) FROM sent WHERE i = 1;
SELECT erlang_await(-1);
\set VERBOSITY default
SELECT erlang_await(NULL);
-- In a MATERIALIZED CTE read in order: every call sent before any is
-- awaited.
WITH sent AS MATERIALIZED (
    SELECT i, erlang_call_async(:'node', 'erlang', 'abs', jsonb_build_array(-i)) AS id
    FROM generate_series(1, 100) i)
SELECT count(*), sum(r::int) FROM (SELECT erlang_await(id) AS r FROM sent ORDER BY i) AS s;
-- An exception is the ERROR erlang_call would raise, when awaited.
SELECT erlang_await(erlang_call_async(:'node', 'erlang', 'abs', '["x"]'));
-- A call's timeout runs from when it was sent.
SELECT erlang_await(erlang_call_async(:'node', 'timer', 'sleep', '[60000]', 200));
-- Back-pressure: at most erlang_cnode.max_in_flight calls run at once,
-- and the rest wait for room instead of failing.
SET erlang_cnode.max_in_flight = 5;
SELECT erlang_call(:'node', 'regress_server', 'reset_concurrency');
SELECT count(*) FROM erlang_call_many(:'node', 'regress_server', 'concurrent',
    (SELECT jsonb_agg(jsonb_build_array(30)) FROM generate_series(1, 40)));
WITH sent AS MATERIALIZED (
    SELECT i, erlang_call_async(:'node', 'regress_server', 'concurrent', '[30]') AS id
    FROM generate_series(1, 20) i)
SELECT count(erlang_await(id)) FROM (SELECT id FROM sent ORDER BY i) AS s;
SELECT erlang_call(:'node', 'regress_server', 'max_concurrent');
RESET erlang_cnode.max_in_flight;
-- statement_timeout with 1,000 calls in flight: every one of their
-- processes on the node is gone afterwards.
SET statement_timeout = '500ms';
SELECT count(*) FROM erlang_call_many(:'node', 'timer', 'sleep',
    (SELECT jsonb_agg(jsonb_build_array(60000)) FROM generate_series(1, 1000)));
RESET statement_timeout;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        IF erlang_call(current_setting('regress.node'), 'regress_server', 'sleepers')::int = 0 THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'calls still running on the node';
END
$$;
SELECT erlang_call(:'node', 'regress_server', 'sleepers');
-- A connection lost while a call is under way: awaiting it is 08N07, and
-- the next call connects afresh.
SELECT set_config('regress.pending',
    erlang_call_async(:'spare_node', 'timer', 'sleep', '[60000]')::text, false) IS NOT NULL AS ok;
SELECT erlang_cast(:'spare_node', 'erlang', 'disconnect_node',
    jsonb_build_array(jsonb_build_object('$atom', local_node)))
FROM erlang_connections() WHERE node = :'spare_node';
SELECT erlang_await(current_setting('regress.pending')::bigint);
SELECT erlang_call(:'spare_node', 'erlang', 'node');
-- erlang_multicall: every node at once; a node that is down and one that
-- is too slow give rows with error, not an ERROR.
SELECT node, result, error - 'message' AS error, error ? 'message' AS explained
FROM erlang_multicall(ARRAY[:'node', :'missing_node', :'long_node', :'spare_node'],
    'regress_server', 'slow_if', '["regress_long", 2000]', 500);
SELECT node, result, error->>'class' AS class, error->'reason' AS reason
FROM erlang_multicall(ARRAY[:'node', :'spare_node'], 'erlang', 'abs', '["x"]');
SELECT * FROM erlang_multicall(ARRAY['not a node'], 'erlang', 'node');
SELECT * FROM erlang_multicall(ARRAY[NULL], 'erlang', 'node');
