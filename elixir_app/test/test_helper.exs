# ExUnit runs as a distributed node, so that PostgreSQL backends can call
# services defined in the tests. End-to-end tests are tagged :integration
# and need PostgreSQL with the extension installed: `mix test --include
# integration` (scripts/test does this); their prerequisites are checked up
# front and a missing one says how to fix it.
System.cmd("epmd", ["-daemon"])
{:ok, _} = Node.start(:"erlang_cnode_test_#{System.pid()}", :shortnames)
Node.set_cookie(:"cookie_#{Base.encode16(:crypto.strong_rand_bytes(12))}")
{:ok, _} = Application.ensure_all_started(:p1_pgsql)

ExUnit.start(exclude: [:integration])

if :integration in Keyword.get(ExUnit.configuration(), :include, []) do
  ErlangCnode.Test.Postgres.check_prerequisites!()
end
