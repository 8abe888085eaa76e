-- Secure by default: no one may call a node unless a member of
-- erlang_cnode_user (or through a server: servers.sql); the cookie is never
-- shown.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'erlang_cnode_user';
SELECT p.oid::regprocedure AS function, array_to_string(p.proacl, ' ') AS acl
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'erlang_cnode'
ORDER BY 1::text;
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel, p.proisstrict
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'erlang_cnode'
ORDER BY 1::text;
-- (Loading the library defines the settings: the superuser's first call.)
SELECT erlang_disconnect(:'node');
CREATE ROLE regress_tester;
SET ROLE regress_tester;
SELECT erlang_call(:'node', 'erlang', 'node');
SHOW erlang_cnode.cookie;
SET erlang_cnode.cookie = 'x';
SELECT name FROM pg_settings WHERE name LIKE 'erlang\_cnode.%' ORDER BY 1;
RESET ROLE;
GRANT erlang_cnode_user TO regress_tester;
SET ROLE regress_tester;
SELECT erlang_connect(:'node', :'cookie');
SELECT erlang_call(:'node', 'erlang', 'node');
RESET ROLE;
-- Settings: a misspelt one is an error; the superuser sees the rest.
SET erlang_cnode.cokie = 'x';
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'erlang\_cnode.%' ORDER BY 1;
-- Cookies are checked, and never echoed (the test also checks the log).
SELECT erlang_connect(:'node', 'not-the-cookie');
SELECT erlang_connect(:'node', '');
SELECT erlang_connect(:'node', E'a\nb');
-- Arguments swapped: the would-be node name (the cookie) is not echoed.
SELECT erlang_connect('s3cret-cookie', :'node');
-- Also with an @ in the cookie: refused before any name is looked up.
SELECT erlang_connect('SeCrEt@cookie', :'node');
SELECT count(*) FROM erlang_connections() c WHERE row_to_json(c)::text LIKE '%' || :'cookie' || '%';
REVOKE erlang_cnode_user FROM regress_tester;
DROP ROLE regress_tester;
