-- The SQL interface of erlang_cnode. Every function talks to other nodes
-- over this backend's own connections: VOLATILE, and PARALLEL RESTRICTED
-- because a parallel worker would hold its own node and connections.
-- Arguments that may be NULL are checked by the functions (22004), so none
-- is STRICT: a NULL node is an error, never a silent NULL.
--
-- Every node argument is a node name (name@host) or a server of the
-- erlang_cnode foreign-data wrapper. Who may do what is checked inside
-- each function (src/server.rs), as dblink does: members of
-- erlang_cnode_user (and superusers) may call anything; other roles only
-- through a server they have USAGE on, and only what its allow option lists.

CREATE FUNCTION erlang_connect(node text, cookie text) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_connect_with_cookie';
COMMENT ON FUNCTION erlang_connect(text, text) IS
    'Connects to an Erlang node with this cookie (replacing any connection to it).';

CREATE FUNCTION erlang_connect(node text) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_connect';
COMMENT ON FUNCTION erlang_connect(text) IS
    'Connects to a node: through a server with the role''s user mapping, else with the server''s ~/.erlang.cookie.';

CREATE FUNCTION erlang_disconnect(node text) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_disconnect';
COMMENT ON FUNCTION erlang_disconnect(text) IS
    'Closes the connection to a node; true if there was one.';

CREATE FUNCTION erlang_ping(node text) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_ping';
COMMENT ON FUNCTION erlang_ping(text) IS
    'Whether the node answers, as net_adm:ping/1.';

CREATE FUNCTION erlang_call(
    node text, module text, function text,
    args jsonb DEFAULT '[]', timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_call';
COMMENT ON FUNCTION erlang_call(text, text, text, jsonb, integer) IS
    'Calls module:function(args...) on the node, as erpc:call/5; an Erlang exception is an ERROR.';

CREATE FUNCTION erlang_gen_call(
    node text, server text, request jsonb, timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_gen_call';
COMMENT ON FUNCTION erlang_gen_call(text, text, jsonb, integer) IS
    'gen_server:call to a registered server on the node; a missing server is an ERROR at once.';

CREATE FUNCTION erlang_cast(node text, module text, function text, args jsonb DEFAULT '[]')
RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_cast';
COMMENT ON FUNCTION erlang_cast(text, text, text, jsonb) IS
    'Runs module:function(args...) on the node without waiting for it (erpc:cast/4).';

CREATE FUNCTION erlang_send(node text, name text, message jsonb) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_send';
COMMENT ON FUNCTION erlang_send(text, text, jsonb) IS
    'Sends a message to a process registered under name on the node.';

CREATE FUNCTION erlang_service_call(
    node text, service text, function text,
    args jsonb DEFAULT '{}', timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_service_call';
COMMENT ON FUNCTION erlang_service_call(text, text, text, jsonb, integer) IS
    'Calls a typed service function (Elixir ErlangCnode.Service) with named arguments.';

CREATE FUNCTION erlang_service_catalog(node text) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_service_catalog';
COMMENT ON FUNCTION erlang_service_catalog(text) IS
    'The services and functions the node offers, as a jsonb array; through a server, only those its allow option lists.';

CREATE FUNCTION erlang_services(node text)
RETURNS TABLE (service text, function text, arguments jsonb, returns jsonb)
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS $$
        SELECT s ->> 'service', s ->> 'function', s -> 'arguments', s -> 'returns'
        FROM jsonb_array_elements(@extschema@.erlang_service_catalog(node)) AS s
    $$;
COMMENT ON FUNCTION erlang_services(text) IS
    'The services and functions the node offers (Elixir ErlangCnode.Registry), with their types.';

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

COMMENT ON FUNCTION erlang_connections() IS
    'This backend''s live connections: node, its own node name there, since when, last use, counts.';

-- Servers and user mappings: a server holds where to connect and what its
-- users may call, a user mapping the cookie (shown only to superusers and
-- the mapped role). Only superusers create servers: USAGE on the wrapper
-- is not granted.
CREATE FUNCTION erlang_cnode_fdw_validator(options text[], catalog oid) RETURNS void
    LANGUAGE c STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_cnode_fdw_validator';
COMMENT ON FUNCTION erlang_cnode_fdw_validator(text[], oid) IS
    'Checks the options of erlang_cnode servers (node, allow, timeouts, max_message_size) and user mappings (cookie).';

CREATE FOREIGN DATA WRAPPER erlang_cnode VALIDATOR erlang_cnode_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER erlang_cnode IS
    'Erlang nodes as servers: CREATE SERVER s FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node ''app@host'', allow ''...'').';

-- The role with full access: raw node names, erlang_connect(node, cookie),
-- no allow-list. It outlives DROP EXTENSION (roles belong to the cluster).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'erlang_cnode_user') THEN
        CREATE ROLE erlang_cnode_user NOLOGIN;
    END IF;
END
$$;

-- Every function checks inside who may do what, so EXECUTE is granted to
-- PUBLIC: a role with USAGE on a server needs no other grant, and a role
-- with none gets 42501 from the function itself (which also keeps a cookie
-- in its arguments out of the log). erlang_cnode_user keeps its own grant,
-- so a DBA may REVOKE ... FROM PUBLIC to leave the functions to members.
-- The validator is PostgreSQL's to call.
REVOKE ALL ON FUNCTION
    erlang_connect(text, text), erlang_connect(text), erlang_disconnect(text),
    erlang_ping(text), erlang_call(text, text, text, jsonb, integer),
    erlang_gen_call(text, text, jsonb, integer), erlang_cast(text, text, text, jsonb),
    erlang_send(text, text, jsonb), erlang_connections(),
    erlang_service_call(text, text, text, jsonb, integer), erlang_services(text),
    erlang_service_catalog(text), erlang_cnode_fdw_validator(text[], oid),
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    erlang_connect(text, text), erlang_connect(text), erlang_disconnect(text),
    erlang_ping(text), erlang_call(text, text, text, jsonb, integer),
    erlang_gen_call(text, text, jsonb, integer), erlang_cast(text, text, text, jsonb),
    erlang_send(text, text, jsonb), erlang_connections(),
    erlang_service_call(text, text, text, jsonb, integer), erlang_services(text),
    erlang_service_catalog(text),
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
TO erlang_cnode_user;

GRANT EXECUTE ON FUNCTION
    erlang_connect(text, text), erlang_connect(text), erlang_disconnect(text),
    erlang_ping(text), erlang_call(text, text, text, jsonb, integer),
    erlang_gen_call(text, text, jsonb, integer), erlang_cast(text, text, text, jsonb),
    erlang_send(text, text, jsonb), erlang_connections(),
    erlang_service_call(text, text, text, jsonb, integer), erlang_services(text),
    erlang_service_catalog(text),
    erlang_call_async(text, text, text, jsonb, integer),
    erlang_await(bigint), erlang_call_many_json(text, text, text, jsonb, integer),
    erlang_call_many(text, text, text, jsonb, integer),
    erlang_multicall_json(text[], text, text, jsonb, integer),
    erlang_multicall(text[], text, text, jsonb, integer)
TO PUBLIC;
