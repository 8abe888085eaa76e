-- The README's example calls, and a few more. scripts/run runs them against
-- a fresh Elixir node, with :node and :cookie set to its name and cookie.
SELECT erlang_connect(:'node', :'cookie');
SELECT erlang_call(:'node', 'erlang', 'node', '[]'::jsonb);
SELECT erlang_call(:'node', 'Elixir.String', 'upcase', '["hello from postgres"]');
SELECT erlang_call(:'node', 'Elixir.Enum', 'sum', '[[1, 2, 3]]');
SELECT erlang_call(:'node', 'maps', 'from_list', '[[{"$tuple": [{"$atom": "answer"}, 42]}]]');
SELECT erlang_call(:'node', 'erlang', 'list_to_tuple', '[[1, "two", {"$atom": "three"}]]');
-- A message to the process registered as demo, and a cast.
SELECT erlang_send(:'node', 'demo', '{"$tuple": [{"$atom": "hello"}, "from SQL"]}');
SELECT erlang_cast(:'node', 'erlang', 'send', '[{"$atom": "demo"}, "sent by a cast"]');
-- A gen_server call: how many applications run there.
SELECT jsonb_array_length(erlang_gen_call(:'node', 'application_controller',
                                          '{"$atom": "which_applications"}', 5000)) AS applications;
-- Typed services (Elixir: use ErlangCnode.Service): what the node offers,
-- calls with named arguments, and a typed-argument error.
SELECT service, function, arguments, returns FROM erlang_services(:'node') ORDER BY 1, 2;
SELECT erlang_service_call(:'node', 'demo', 'add', '{"a": 1, "b": 2}');
SELECT erlang_service_call(:'node', 'demo', 'echo', '{"value": {"list": [1, 2.5, null]}}');
SELECT erlang_service_call(:'node', 'demo', 'greet', '{"name": "postgres", "tone": "loud"}');
SELECT erlang_service_call(:'node', 'demo', 'add', '{"a": 1, "b": "two"}');
-- Erlang exceptions are SQL errors with their own SQLSTATE.
\set VERBOSITY verbose
SELECT erlang_call(:'node', 'nosuch', 'f');
\set VERBOSITY default
SELECT node, local_node, calls, errors FROM erlang_connections();
SELECT erlang_disconnect(:'node');
