-- The README's example calls, and a few more. scripts/run runs them against
-- a fresh Elixir node, with :node and :cookie set to its name and cookie.
-- A server says where the node is and what roles without full access may
-- call there; a user mapping holds the cookie (shown only to superusers and
-- the mapped role). No statement below carries the cookie.
CREATE SERVER demo FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node :'node',
    allow 'Elixir.String:upcase/1, erlang:node/0, service:demo.add');
CREATE USER MAPPING FOR PUBLIC SERVER demo OPTIONS (cookie :'cookie');
SELECT erlang_call('demo', 'erlang', 'node', '[]'::jsonb);
SELECT erlang_call('demo', 'Elixir.String', 'upcase', '["hello from postgres"]');
SELECT erlang_call('demo', 'Elixir.Enum', 'sum', '[[1, 2, 3]]');
SELECT erlang_call('demo', 'maps', 'from_list', '[[{"$tuple": [{"$atom": "answer"}, 42]}]]');
SELECT erlang_call('demo', 'erlang', 'list_to_tuple', '[[1, "two", {"$atom": "three"}]]');
-- A message to the process registered as demo, and a cast.
SELECT erlang_send('demo', 'demo', '{"$tuple": [{"$atom": "hello"}, "from SQL"]}');
SELECT erlang_cast('demo', 'erlang', 'send', '[{"$atom": "demo"}, "sent by a cast"]');
-- A gen_server call: how many applications run there.
SELECT jsonb_array_length(erlang_gen_call('demo', 'application_controller',
                                          '{"$atom": "which_applications"}', 5000)) AS applications;
-- Typed services (Elixir: use ErlangCnode.Service): what the node offers,
-- calls with named arguments, and a typed-argument error.
SELECT service, function, arguments, returns FROM erlang_services('demo') ORDER BY 1, 2;
SELECT erlang_service_call('demo', 'demo', 'add', '{"a": 1, "b": 2}');
SELECT erlang_service_call('demo', 'demo', 'echo', '{"value": {"list": [1, 2.5, null]}}');
SELECT erlang_service_call('demo', 'demo', 'greet', '{"name": "postgres", "tone": "loud"}');
SELECT erlang_service_call('demo', 'demo', 'add', '{"a": 1, "b": "two"}');
-- Erlang exceptions are SQL errors with their own SQLSTATE.
\set VERBOSITY verbose
SELECT erlang_call('demo', 'nosuch', 'f');
\set VERBOSITY default
-- An analyst with USAGE on the server may call what its allow option
-- lists, and nothing else.
CREATE ROLE demo_analyst;
GRANT USAGE ON FOREIGN SERVER demo TO demo_analyst;
SET ROLE demo_analyst;
SELECT erlang_service_call('demo', 'demo', 'add', '{"a": 20, "b": 22}');
SELECT service, function FROM erlang_services('demo');
SELECT erlang_call('demo', 'os', 'cmd', '["id"]');
RESET ROLE;
-- Members of erlang_cnode_user (and superusers) may also name a node and
-- pass its cookie, as the original project did.
SELECT erlang_connect(:'node', :'cookie');
SELECT node, local_node, calls, errors FROM erlang_connections();
SELECT erlang_disconnect(:'node');
