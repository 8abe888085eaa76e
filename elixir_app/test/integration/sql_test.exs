defmodule ErlangCnode.Integration.SqlTest do
  # SQL → Elixir → SQL: a real PostgreSQL cluster with the extension calls
  # services defined here, on this test node, through a real client.
  use ExUnit.Case
  # Crashing services are expected here; their reports would be noise.
  @moduletag :capture_log
  @moduletag :integration
  @moduletag timeout: 120_000

  alias ErlangCnode.Test.{Generate, Postgres}
  alias ErlangCnode.TestServices.{Accounts, Terms}

  import Postgres, only: [literal: 1, query: 2, query!: 2]

  setup_all do
    Postgres.check_prerequisites!()
    cluster = Postgres.start!()
    on_exit(fn -> Postgres.stop(cluster) end)
    conn = Postgres.connect!(cluster)
    query!(conn, "CREATE EXTENSION erlang_cnode")
    :pgsql.terminate(conn)
    ErlangCnode.Registry.register(ErlangCnode.Demo)
    ErlangCnode.Registry.register(Accounts)
    %{cluster: cluster, node: literal(Atom.to_string(node()))}
  end

  setup %{cluster: cluster, node: node} do
    # Each test its own session, connected to this node.
    conn = Postgres.connect!(cluster)
    on_exit(fn -> :pgsql.terminate(conn) end)
    cookie = literal(Atom.to_string(Node.get_cookie()))
    assert [["t"]] = query!(conn, "SELECT erlang_connect(#{node}, #{cookie})")
    %{session: conn}
  end

  test "undef for an Elixir module called without its prefix hints at the prefix",
       %{session: s, node: node} do
    assert {:error, %{code: "ER001", hint: hint}} =
             query(s, "SELECT erlang_call(#{node}, 'String', 'upcase', '[\"a\"]')")

    assert hint =~ "Elixir.String"

    # An Erlang module's undef gets no such hint.
    assert {:error, %{code: "ER001", hint: nil}} =
             query(s, "SELECT erlang_call(#{node}, 'lists', 'nosuch', '[]')")
  end

  test "a service call returns its result as jsonb", %{session: s, node: node} do
    assert [["3"]] =
             query!(
               s,
               "SELECT erlang_service_call(#{node}, 'demo', 'add', '{\"a\": 1, \"b\": 2}')"
             )

    assert [[~s("HELLO, ADA!")]] =
             query!(
               s,
               "SELECT erlang_service_call(#{node}, 'demo', 'greet', '{\"name\": \"ada\", \"tone\": \"loud\"}')"
             )

    assert [[~s({"id": 7, "tags": ["vip"]})]] =
             query!(s, """
             SELECT erlang_service_call(#{node}, 'accounts', 'find',
               '{"user": {"id": 7}, "tags": ["vip"]}', 5000)
             """)
  end

  test "erlang_services lists the functions with their types", %{session: s, node: node} do
    rows =
      query!(
        s,
        "SELECT service, function, arguments, returns FROM erlang_services(#{node}) WHERE service = 'demo' ORDER BY function"
      )

    assert ["demo", "add", args, ~s("integer")] = Enum.find(rows, &(Enum.at(&1, 1) == "add"))
    assert args == ~s([{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}])
    assert Enum.map(rows, &Enum.at(&1, 1)) == ["add", "echo", "greet"]
  end

  test "through a server, a role sees and calls only the services its allow option lists",
       %{session: s, node: node} do
    cookie = literal(Atom.to_string(Node.get_cookie()))

    for statement <- [
          "CREATE SERVER services FOREIGN DATA WRAPPER erlang_cnode " <>
            "OPTIONS (node #{node}, allow 'service:demo.add, service:accounts.find')",
          "CREATE ROLE service_analyst",
          "CREATE USER MAPPING FOR service_analyst SERVER services OPTIONS (cookie #{cookie})",
          "GRANT USAGE ON FOREIGN SERVER services TO service_analyst",
          "SET ROLE service_analyst"
        ] do
      query!(s, statement)
    end

    listed =
      query!(s, "SELECT service || '.' || function FROM erlang_services('services') ORDER BY 1")

    assert List.flatten(listed) == ["accounts.find", "demo.add"]

    assert [["3"]] =
             query!(
               s,
               ~s|SELECT erlang_service_call('services', 'demo', 'add', '{"a": 1, "b": 2}')|
             )

    assert {:error, %{code: "42501", message: message}} =
             query(s, ~s|SELECT erlang_service_call('services', 'demo', 'echo', '{"value": 1}')|)

    assert message =~ "service:demo.echo is not allowed on server services"

    # Funs cannot reach a service through an allow-list, even as `any`.
    assert {:error, %{code: "42501"}} =
             query(s, """
             SELECT erlang_service_call('services', 'accounts', 'find',
               '{"user": {"id": 1}, "tags": [{"$fun": {"module": "os", "function": "getpid", "arity": 0}}]}')
             """)

    for statement <- [
          "RESET ROLE",
          "DROP SERVER services CASCADE",
          "DROP ROLE service_analyst"
        ] do
      query!(s, statement)
    end
  end

  test "invalid arguments are an ERROR naming the path and the problem", %{session: s, node: node} do
    assert {:error, %{code: "22023", message: message}} =
             query(s, """
             SELECT erlang_service_call(#{node}, 'accounts', 'find',
               '{"user": {"id": "x"}, "tags": []}')
             """)

    assert message =~ ~s(args.user.id: expected integer, got "x")

    assert {:error, %{code: "22023", message: tags}} =
             query(
               s,
               "SELECT erlang_service_call(#{node}, 'accounts', 'find', '{\"user\": {\"id\": 1}, \"tags\": [\"gold\"]}')"
             )

    assert tags =~ ~s(args.tags[0]: expected one of "new", "vip", got "gold")

    assert {:error, %{code: "42883"}} =
             query(s, "SELECT erlang_service_call(#{node}, 'nosuch', 'f')")

    assert {:error, %{code: "42883"}} =
             query(s, "SELECT erlang_service_call(#{node}, 'demo', 'nosuch')")

    assert {:error, %{code: "22023"}} =
             query(s, "SELECT erlang_service_call(#{node}, 'demo', 'add', '[1, 2]')")
  end

  test "a crashing service is an ERROR with the reason; the dispatcher lives on", %{
    session: s,
    node: node
  } do
    dispatcher = Process.whereis(ErlangCnode.Dispatcher)

    assert {:error, %{code: "ER004", message: message, detail: detail}} =
             query(
               s,
               "SELECT erlang_service_call(#{node}, 'accounts', 'crash', '{\"reason\": \"boom\"}')"
             )

    assert message =~ "accounts.crash"
    assert detail =~ "boom"

    assert {:error, %{code: "ER005"}} =
             query(s, "SELECT erlang_service_call(#{node}, 'accounts', 'wrong_result')")

    assert Process.whereis(ErlangCnode.Dispatcher) == dispatcher

    assert [["3"]] =
             query!(
               s,
               "SELECT erlang_service_call(#{node}, 'demo', 'add', '{\"a\": 1, \"b\": 2}')"
             )
  end

  test "a service whose process is stopped by a signal crashed (ER004)", %{session: s, node: node} do
    assert {:error, %{code: "ER004", message: message} = error} =
             query(s, "SELECT erlang_service_call(#{node}, 'accounts', 'stops_itself')")

    assert message =~ "accounts.stops_itself"
    assert message =~ "crashed"
    assert inspect(error) =~ "its process was stopped: boom"
  end

  test "a slow service times out with 57014", %{session: s, node: node} do
    assert {:error, %{code: "57014", message: message}} =
             query(
               s,
               "SELECT erlang_service_call(#{node}, 'accounts', 'slow', '{\"ms\": 10000}', 200)"
             )

    assert message =~ "accounts.slow"
    assert message =~ "did not finish in time"
  end

  test "pg_cancel_backend stops a service call", %{cluster: cluster, session: s, node: node} do
    [[pid]] = query!(s, "SELECT pg_backend_pid()")

    call =
      Task.async(fn ->
        query(
          s,
          "SELECT erlang_service_call(#{node}, 'accounts', 'slow', '{\"ms\": 60000}', 90000)"
        )
      end)

    other = Postgres.connect!(cluster)
    on_exit(fn -> :pgsql.terminate(other) end)

    wait_until(fn ->
      [[state]] =
        query!(
          other,
          "SELECT count(*) FROM pg_stat_activity WHERE pid = #{pid} AND query LIKE '%slow%'"
        )

      state == "1"
    end)

    # The call is on the node a moment after it shows.
    slow = fn -> ErlangCnode.Test.Wait.running_in(ErlangCnode.TestServices.Accounts, :slow) end
    wait_until(fn -> slow.() == 1 end)
    assert [["t"]] = query!(other, "SELECT pg_cancel_backend(#{pid})")
    assert {:error, %{code: "57014"}} = Task.await(call, 30_000)
    # The service's process goes with the cancelled call.
    wait_until(fn -> slow.() == 0 end)

    assert [["3"]] =
             query!(
               s,
               "SELECT erlang_service_call(#{node}, 'demo', 'add', '{\"a\": 1, \"b\": 2}')"
             )
  end

  test "arguments from SQL make no atoms on the node", %{session: s, node: node} do
    name = "never_made_#{System.unique_integer([:positive])}"

    assert {:error, %{code: "22023", message: message}} =
             query(
               s,
               "SELECT erlang_service_call(#{node}, 'demo', 'echo', '{\"value\": {\"$atom\": \"#{name}\"}}')"
             )

    assert message =~ "unknown_atom"
    assert_raise ArgumentError, fn -> String.to_existing_atom(name) end
  end

  test "a service can send a message back to a process here", %{session: s, node: node} do
    Process.register(self(), :sql_test_inbox)

    assert [["true"]] =
             query!(s, """
             SELECT erlang_service_call(#{node}, 'accounts', 'notify',
               '{"to": "sql_test_inbox", "message": {"hello": [1, 2.5, null]}}')
             """)

    assert_receive {:from_sql, %{"hello" => [1, 2.5, nil]}}, 5_000
  end

  test "the registry sees the backends connected to this node", %{session: s} do
    [[backend]] = query!(s, "SELECT local_node FROM erlang_connections()")
    assert String.to_atom(backend) in ErlangCnode.Registry.backends()
  end

  test "the NIF and the extension give the same jsonb for the same term", %{
    session: s,
    node: node
  } do
    terms = Generate.terms(400, 20_261_128)
    Terms.put(terms)

    values =
      terms
      |> Enum.with_index()
      |> Enum.map_join(", ", fn {term, i} ->
        "(#{i}, #{literal(ErlangCnode.Term.to_json!(term))})"
      end)

    rows =
      query!(s, """
      SELECT i FROM (VALUES #{values}) AS t(i, json)
      WHERE erlang_call(#{node}, 'Elixir.ErlangCnode.TestServices.Terms', 'get', jsonb_build_array(i))
            IS DISTINCT FROM json::jsonb
      """)

    assert rows == [],
           "terms whose JSON differs: #{inspect(Enum.map(rows, fn [i] -> Enum.at(terms, String.to_integer(i)) end))}"
  end

  defp wait_until(check), do: ErlangCnode.Test.Wait.until(check, 25)
end
