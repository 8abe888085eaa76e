-- Terms through SQL: every row of docs/term-mapping.md goes to the node and
-- back (erlang:hd([T]) returns T) unchanged, and Erlang sees what we mean.
SELECT erlang_connect(:'node', :'cookie');
CREATE TEMP TABLE terms (t jsonb);
INSERT INTO terms VALUES
    ('1'), ('-7'), ('123456789012345678901234567890'), ('2.5'), ('7.0'), ('0.1'),
    ('true'), ('false'), ('null'), ('"héllo"'), ('""'), ('[]'), ('{}'), ('[1, [2]]'),
    ('{"a": 1, "b": [1, {"c": null}]}'), ('{"$atom": "ok"}'), ('{"$atom": "Ünï"}'),
    ('{"$tuple": []}'), ('{"$tuple": [{"$atom": "ok"}, 1]}'), ('{"$binary": "/wA="}'),
    ('{"$bitstring": {"base64": "oA==", "bits": 3}}'), ('[1, 2, {"$tail": 3}]'),
    ('{"$map": [[{"$atom": "a"}, 1]]}'), ('{"$map": [["$atom", 1]]}'), ('{"$ref": "x"}'),
    ('{"$fun": {"module": "lists", "function": "map", "arity": 2}}'),
    ('{"$atom": {"$binary": "YQBi"}}');
SELECT t, erlang_call(:'node', 'erlang', 'hd', jsonb_build_array(jsonb_build_array(t))) = t AS same
FROM terms;
-- Types as Erlang sees them.
SELECT erlang_call(:'node', 'erlang', 'is_atom', '[{"$atom": "ok"}]') AS atom,
       erlang_call(:'node', 'erlang', 'is_binary', '["text"]') AS binary,
       erlang_call(:'node', 'erlang', 'is_float', '[7.0]') AS float,
       erlang_call(:'node', 'erlang', 'is_integer', '[123456789012345678901234567890]') AS bignum,
       erlang_call(:'node', 'erlang', 'is_map', '[{"a": 1}]') AS map,
       erlang_call(:'node', 'erlang', 'tuple_size', '[{"$tuple": [1, 2, 3]}]') AS tuple_size;
-- Pids, references and funs made on the node come back as the same terms.
SELECT erlang_call(:'node', 'erlang', 'node', jsonb_build_array(erlang_call(:'node', 'erlang', 'self'))) AS pid_node;
SELECT erlang_call(:'node', 'erlang', 'is_reference', jsonb_build_array(erlang_call(:'node', 'erlang', 'make_ref'))) AS is_ref;
SELECT erlang_call(:'node', 'erlang', 'fun_info',
    jsonb_build_array(erlang_call(:'node', 'erlang', 'make_fun', '[{"$atom": "lists"}, {"$atom": "seq"}, 2]'),
                      '{"$atom": "arity"}'::jsonb));
-- jsonb normalises numbers before the mapping sees them (docs/term-mapping.md):
-- exponent forms with whole values arrive as integers, fractions as floats.
SELECT n, erlang_call(:'node', 'erlang', 'is_integer', jsonb_build_array(n::jsonb)) AS is_integer,
       erlang_call(:'node', 'erlang', 'is_float', jsonb_build_array(n::jsonb)) AS is_float
FROM unnest(ARRAY['1e3', '1.5e3', '1.5e-3', '1000.0', '7.0']) AS n;
SELECT length(erlang_call(:'node', 'erlang', 'integer_to_binary', '[1e400]') #>> '{}') AS digits;
