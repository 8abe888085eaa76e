-- gen_server calls, casts and sends.
SELECT erlang_connect(:'node', :'cookie');
SELECT set_config('regress.node', :'node', false) IS NOT NULL AS ok;
SELECT erlang_gen_call(:'node', 'regress_server', '{"$tuple": [{"$atom": "echo"}, {"a": [1, 2.5, null]}]}');
-- A server that is not there is an error at once, not after the timeout.
\set VERBOSITY verbose
SELECT erlang_gen_call(:'node', 'nosuch_server', '1', 600000);
\set VERBOSITY default
SELECT erlang_gen_call(:'node', 'regress_server', '{"$tuple": [{"$atom": "sleep"}, 1000]}', 100);
-- A message to a registered process, and a cast that really runs.
SELECT erlang_send(:'node', 'regress_server', '{"$tuple": [{"$atom": "hello"}, 1]}');
SELECT erlang_cast(:'node', 'regress_server', 'record', '["the cast ran"]');
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        IF jsonb_array_length(erlang_gen_call(current_setting('regress.node'), 'regress_server',
                                              '{"$atom": "seen"}')) >= 2 THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'the message and the cast did not arrive';
END
$$;
SELECT jsonb_array_elements(erlang_gen_call(:'node', 'regress_server', '{"$atom": "seen"}')) AS seen
ORDER BY 1::text;
-- A server that crashes on the call: the exit reason; then it is gone.
SELECT erlang_gen_call(:'node', 'regress_server', '{"$atom": "crash"}');
SELECT erlang_gen_call(:'node', 'regress_server', '{"$atom": "seen"}');
