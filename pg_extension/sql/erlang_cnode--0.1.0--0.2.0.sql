-- erlang_cnode 0.1.0 -> 0.2.0: servers, user mappings and allow-lists.
-- After this script the catalogue is what a fresh install of 0.2.0 makes
-- (checked by the upgrade test in pg_extension/regress). The role
-- erlang_cnode_user and every grant made to or by it are kept.
\echo Use "ALTER EXTENSION erlang_cnode UPDATE TO '0.2.0'" to load this file. \quit

COMMENT ON FUNCTION erlang_connect(text) IS
    'Connects to a node: through a server with the role''s user mapping, else with the server''s ~/.erlang.cookie.';

COMMENT ON FUNCTION erlang_ping(text) IS
    'Whether the node answers, as net_adm:ping/1.';

CREATE FUNCTION erlang_service_catalog(node text) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_service_catalog';
COMMENT ON FUNCTION erlang_service_catalog(text) IS
    'The services and functions the node offers, as a jsonb array; through a server, only those its allow option lists.';

-- Same signature: replaced in place, so objects that use it keep working.
CREATE OR REPLACE FUNCTION erlang_services(node text)
RETURNS TABLE (service text, function text, arguments jsonb, returns jsonb)
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS $$
        SELECT s ->> 'service', s ->> 'function', s -> 'arguments', s -> 'returns'
        FROM jsonb_array_elements(@extschema@.erlang_service_catalog(node)) AS s
    $$;

CREATE FUNCTION erlang_cnode_fdw_validator(options text[], catalog oid) RETURNS void
    LANGUAGE c STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_cnode_fdw_validator';
COMMENT ON FUNCTION erlang_cnode_fdw_validator(text[], oid) IS
    'Checks the options of erlang_cnode servers (node, allow, timeouts, max_message_size) and user mappings (cookie).';

CREATE FOREIGN DATA WRAPPER erlang_cnode VALIDATOR erlang_cnode_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER erlang_cnode IS
    'Erlang nodes as servers: CREATE SERVER s FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node ''app@host'', allow ''...'').';

-- Who may call is now checked inside every function: EXECUTE for PUBLIC,
-- as 0.2.0 installs it (erlang_cnode_user's grants stay).
REVOKE ALL ON FUNCTION erlang_service_catalog(text), erlang_cnode_fdw_validator(text[], oid)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION erlang_service_catalog(text) TO erlang_cnode_user;

GRANT EXECUTE ON FUNCTION
    erlang_connect(text, text), erlang_connect(text), erlang_disconnect(text),
    erlang_ping(text), erlang_call(text, text, text, jsonb, integer),
    erlang_gen_call(text, text, jsonb, integer), erlang_cast(text, text, text, jsonb),
    erlang_send(text, text, jsonb), erlang_connections(),
    erlang_service_call(text, text, text, jsonb, integer), erlang_services(text),
    erlang_service_catalog(text)
TO PUBLIC;
