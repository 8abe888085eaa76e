-- erlang_cnode 0.2.0 -> 0.3.0: many calls in flight (erlang_call_async,
-- erlang_await, erlang_call_many, erlang_multicall). After this script the
-- catalogue is what a fresh install of 0.3.0 makes (checked by the upgrade
-- test in pg_extension/regress).
\echo Use "ALTER EXTENSION erlang_cnode UPDATE TO '0.3.0'" to load this file. \quit

-- Many calls in flight: every call is sent before any is waited for. At
-- most erlang_cnode.max_in_flight per backend; past that a new call waits
-- (interruptibly) for room.
CREATE FUNCTION erlang_call_async(
    node text, module text, function text,
    args jsonb DEFAULT '[]', timeout_ms integer DEFAULT NULL
) RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_call_async';
COMMENT ON FUNCTION erlang_call_async(text, text, text, jsonb, integer) IS
    'Sends module:function(args...) to the node and returns an id for erlang_await at once.';

CREATE FUNCTION erlang_await(request bigint) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_await';
COMMENT ON FUNCTION erlang_await(bigint) IS
    'The result of a call erlang_call_async sent, or the ERROR erlang_call would raise; each id once.';

CREATE FUNCTION erlang_call_many_json(
    node text, module text, function text, args_list jsonb, timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_call_many_json';
COMMENT ON FUNCTION erlang_call_many_json(text, text, text, jsonb, integer) IS
    'erlang_call_many as one jsonb array of the results, in input order.';

CREATE FUNCTION erlang_call_many(
    node text, module text, function text, args_list jsonb, timeout_ms integer DEFAULT NULL
) RETURNS SETOF jsonb
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS $$
        SELECT r FROM jsonb_array_elements(
            @extschema@.erlang_call_many_json(node, module, function, args_list, timeout_ms)) AS r
    $$;
COMMENT ON FUNCTION erlang_call_many(text, text, text, jsonb, integer) IS
    'One call of module:function per element of args_list (an array of argument arrays), all pipelined; results in input order.';

CREATE FUNCTION erlang_multicall_json(
    nodes text[], module text, function text,
    args jsonb DEFAULT '[]', timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_multicall_json';
COMMENT ON FUNCTION erlang_multicall_json(text[], text, text, jsonb, integer) IS
    'erlang_multicall as one jsonb array of {node, result} or {node, error} objects.';

CREATE FUNCTION erlang_multicall(
    nodes text[], module text, function text,
    args jsonb DEFAULT '[]', timeout_ms integer DEFAULT NULL
) RETURNS TABLE (node text, result jsonb, error jsonb)
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS $$
        SELECT r ->> 'node', r -> 'result', r -> 'error'
        FROM jsonb_array_elements(
            @extschema@.erlang_multicall_json(nodes, module, function, args, timeout_ms)) AS r
    $$;
COMMENT ON FUNCTION erlang_multicall(text[], text, text, jsonb, integer) IS
    'module:function(args...) on every node in parallel, as erpc:multicall; a failing node gives a row with error (class, reason).';

-- As every function: EXECUTE for PUBLIC (checked inside), and for
-- erlang_cnode_user.
REVOKE ALL ON FUNCTION
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
TO erlang_cnode_user;

GRANT EXECUTE ON FUNCTION
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
TO PUBLIC;
