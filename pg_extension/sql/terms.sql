-- Reading terms from SQL, and Erlang exceptions as data (docs/cookbook.md).
-- The readers are pure functions of their argument: IMMUTABLE, STRICT,
-- PARALLEL SAFE, and for everyone (they call no node).

CREATE FUNCTION erlang_text(term jsonb) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_text';
COMMENT ON FUNCTION erlang_text(jsonb) IS
    'The term in Erlang syntax as ~p prints it, on one line: printable charlists as strings, #{...}, <<"...">>, <node.N.S> pids.';

CREATE FUNCTION erlang_string(term jsonb) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_string';
COMMENT ON FUNCTION erlang_string(jsonb) IS
    'A charlist, iolist or binary as text (as unicode:characters_to_binary/1 reads it); an ERROR for anything else.';

CREATE FUNCTION erlang_charlist(text text) RETURNS jsonb
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_charlist';
COMMENT ON FUNCTION erlang_charlist(text) IS
    'The text as an Erlang charlist (a list of code points), for functions that take strings as lists.';

CREATE FUNCTION erlang_proplist(term jsonb) RETURNS jsonb
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_proplist';
COMMENT ON FUNCTION erlang_proplist(jsonb) IS
    'A proplist, keyword list or map with atom or binary keys as a JSON object (values in the term mapping); an ERROR on a duplicate or non-name key.';

CREATE FUNCTION erlang_record(term jsonb, fields text[]) RETURNS jsonb
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'erlang_record';
COMMENT ON FUNCTION erlang_record(jsonb, text[]) IS
    'A record {Tag, F1, ...} as a JSON object of the field names given (values in the term mapping).';

CREATE FUNCTION erlang_try_call(
    node text, module text, function text,
    args jsonb DEFAULT '[]', timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_try_call';
COMMENT ON FUNCTION erlang_try_call(text, text, text, jsonb, integer) IS
    'As erlang_call, but {"ok": result} or {"error": {"class", "reason", "stack"}} instead of raising an Erlang exception; failures to reach the node still raise.';

CREATE FUNCTION erlang_last_error() RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_last_error';
COMMENT ON FUNCTION erlang_last_error() IS
    'The Erlang exception this session raised last as an ERROR, as {"class", "reason", "stack"}; NULL if none.';

-- Any process as a target: besides a registered name (text), a jsonb
-- target: a pid, {global, Name}, {via, Module, Name} or {Name, Node}.
CREATE FUNCTION erlang_send(node text, target jsonb, message jsonb) RETURNS boolean
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_send_to';
COMMENT ON FUNCTION erlang_send(text, jsonb, jsonb) IS
    'Sends a message to a pid, {global, Name}, {via, Module, Name}, {Name, Node} or a registered name given as jsonb.';

CREATE FUNCTION erlang_gen_call(
    node text, server jsonb, request jsonb, timeout_ms integer DEFAULT NULL
) RETURNS jsonb
    LANGUAGE c VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'erlang_gen_call_to';
COMMENT ON FUNCTION erlang_gen_call(text, jsonb, jsonb, integer) IS
    'gen_server:call of a pid, {global, Name}, {via, Module, Name}, {Name, Node} or a registered name given as jsonb.';

-- For everyone: the readers call no node; the others check rights inside,
-- as erlang_call does.
GRANT EXECUTE ON FUNCTION
    erlang_text(jsonb), erlang_string(jsonb), erlang_charlist(text), erlang_proplist(jsonb),
    erlang_record(jsonb, text[]), erlang_try_call(text, text, text, jsonb, integer),
    erlang_last_error(), erlang_send(text, jsonb, jsonb),
    erlang_gen_call(text, jsonb, jsonb, integer)
TO PUBLIC;
