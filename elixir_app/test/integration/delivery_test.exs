defmodule ErlangCnode.Integration.DeliveryTest do
  # Delivery at commit end to end: PostgreSQL with the library preloaded
  # (its background worker running), erlang_send_on_commit in real
  # transactions, and ErlangCnode.Inbox on a node of its own that the test
  # kills with SIGKILL and restarts, while PostgreSQL itself is stopped as a
  # crash does (-m immediate) and restarted.
  use ExUnit.Case
  @moduletag :capture_log
  @moduletag :integration
  @moduletag timeout: 600_000

  alias ErlangCnode.Test.{CrashInbox, Postgres, Wait}

  import Postgres, only: [literal: 1, query!: 2]

  @committed 10_000
  @rolled_back 2_000
  @per_transaction 25

  setup_all do
    Postgres.check_prerequisites!()
    cluster = Postgres.start!()
    on_exit(fn -> Postgres.stop(cluster) end)

    Postgres.configure!(cluster, """
    shared_preload_libraries = 'erlang_cnode'
    erlang_cnode.retry_delay = 100
    erlang_cnode.retry_max_delay = 1000
    erlang_cnode.delivery_timeout = 3000
    """)

    Postgres.restart!(cluster)
    conn = Postgres.connect!(cluster)
    query!(conn, "CREATE EXTENSION erlang_cnode")
    wait_for_worker(conn)
    :pgsql.terminate(conn)
    %{cluster: cluster}
  end

  defp wait_for_worker(conn) do
    Wait.until(
      fn ->
        [[n]] =
          query!(conn, """
          SELECT count(*) FROM pg_stat_activity
           WHERE backend_type = 'erlang_cnode worker' AND datname = current_database()
          """)

        n == "1"
      end,
      100
    )
  end

  defp start_receiver(name, dir) do
    cookie = Atom.to_charlist(Node.get_cookie())
    {:ok, _peer, node} = :peer.start(%{name: name, args: [~c"-setcookie", cookie]})
    :ok = :rpc.call(node, :code, :add_pathsa, [:code.get_path()])
    :ok = :rpc.call(node, CrashInbox, :start, [dir])
    node
  end

  defp kill_receiver(node) do
    os_pid = :rpc.call(node, :os, :getpid, [])
    {_, 0} = System.cmd("kill", ["-9", to_string(os_pid)])
    Wait.until(fn -> node not in Node.list() end, 50)
    # EPMD forgets the name when the node's connection to it closes.
    Wait.until(fn -> not registered?(node) end, 50)
  end

  defp registered?(node) do
    [alive, host] = String.split(Atom.to_string(node), "@")
    {:ok, names} = :erl_epmd.names(String.to_charlist(host))
    Enum.any?(names, fn {n, _} -> List.to_string(n) == alive end)
  end

  # One transaction of @per_transaction messages to `inbox`: the ids.
  defp transaction(conn, inbox, outcome) do
    {:ok, _} = :pgsql.squery(conn, "BEGIN")

    {:ok, [{_, _, rows}]} =
      :pgsql.squery(conn, """
      SELECT erlang_send_on_commit('crash', #{literal(Atom.to_string(inbox))},
                                   jsonb_build_object('n', g))
        FROM generate_series(1, #{@per_transaction}) g
      """)

    {:ok, _} = :pgsql.squery(conn, if(outcome == :commit, do: "COMMIT", else: "ROLLBACK"))
    Enum.map(rows, fn [id] -> String.to_integer(to_string(id)) end)
  end

  test "every committed message is handled exactly once, in commit order, through kills and a crash",
       %{cluster: cluster} do
    dir = Path.join(System.tmp_dir!(), "crash_inbox_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    name = :"crash_rcv_#{System.unique_integer([:positive])}"
    node = start_receiver(name, dir)

    conn = Postgres.connect!(cluster)

    query!(
      conn,
      "CREATE SERVER crash FOREIGN DATA WRAPPER erlang_cnode " <>
        "OPTIONS (node #{literal(Atom.to_string(node))})"
    )

    query!(
      conn,
      "CREATE USER MAPPING FOR PUBLIC SERVER crash " <>
        "OPTIONS (cookie #{literal(Atom.to_string(Node.get_cookie()))})"
    )

    transactions = div(@committed + @rolled_back, @per_transaction)
    rollback_every = div(@committed + @rolled_back, @rolled_back)
    inboxes = [CrashInbox.A.name(), CrashInbox.B.name()]

    # What happens to the receiver and to PostgreSQL, after which transaction.
    events = %{
      div(transactions, 6) => :kill_receiver,
      div(transactions, 4) => :start_receiver,
      div(transactions, 2) => :kill_receiver,
      div(transactions * 2, 3) => :crash_postgres
    }

    {conn, committed, rolled_back} =
      Enum.reduce(1..transactions, {conn, %{}, []}, fn i, {conn, committed, rolled_back} ->
        inbox = Enum.at(inboxes, rem(i, 2))
        outcome = if rem(i, rollback_every) == 0, do: :rollback, else: :commit
        ids = transaction(conn, inbox, outcome)

        {committed, rolled_back} =
          case outcome do
            :commit -> {Map.update(committed, inbox, ids, &(&1 ++ ids)), rolled_back}
            :rollback -> {committed, rolled_back ++ ids}
          end

        conn =
          case events[i] do
            :kill_receiver ->
              kill_receiver(node)
              conn

            :start_receiver ->
              ^node = start_receiver(name, dir)
              conn

            :crash_postgres ->
              # Messages are pending (the receiver is down): none may be lost.
              [[pending]] =
                query!(conn, "SELECT count(*) FROM erlang_outbox WHERE state = 'pending'")

              assert String.to_integer(pending) > 0
              :pgsql.terminate(conn)
              Postgres.restart!(cluster, :immediate)
              ^node = start_receiver(name, dir)
              conn = Postgres.connect!(cluster)
              wait_for_worker(conn)
              conn

            nil ->
              conn
          end

        {conn, committed, rolled_back}
      end)

    # Everything is delivered in the end.
    Wait.until(
      fn ->
        [[left]] = query!(conn, "SELECT count(*) FROM erlang_outbox WHERE state <> 'delivered'")
        left == "0"
      end,
      250,
      480
    )

    committed_ids = committed |> Map.values() |> List.flatten()
    # What each inbox handled, as its own durable log says (the record it
    # de-duplicates by), and how often the handlers ran: a kill between a
    # handler returning and its id reaching the log (microseconds) runs
    # that handler again after the restart, as docs/delivery.md says.
    handled = Map.new(inboxes, &{&1, ErlangCnode.Inbox.handled(&1, dir: dir)})
    all_handled = handled |> Map.values() |> List.flatten()
    runs = inboxes |> Enum.flat_map(&CrashInbox.handled(dir, &1))
    reruns = length(runs) - length(Enum.uniq(runs))
    duplicated = length(all_handled) - length(Enum.uniq(all_handled))
    lost = MapSet.difference(MapSet.new(committed_ids), MapSet.new(all_handled)) |> MapSet.size()
    rolled_back_handled = MapSet.intersection(MapSet.new(rolled_back), MapSet.new(all_handled))

    # One producer, one transaction at a time: commit order is id order.
    out_of_order =
      Enum.count(inboxes, fn inbox -> handled[inbox] != Enum.sort(handled[inbox]) end)

    [[retried]] = query!(conn, "SELECT count(*) FROM erlang_outbox WHERE attempts > 1")

    IO.puts(
      "\ncrash test: committed #{length(committed_ids)}, rolled back #{length(rolled_back)}, " <>
        "handled #{length(all_handled)}: lost #{lost}, duplicated #{duplicated}, " <>
        "rolled back but handled #{MapSet.size(rolled_back_handled)}, " <>
        "inboxes out of commit order #{out_of_order}; delivered after a failed attempt #{retried}; " <>
        "handler runs #{length(runs)} (#{reruns} again after a kill in the window)"
    )

    assert length(committed_ids) == @committed
    assert length(rolled_back) == @rolled_back
    assert lost == 0
    assert duplicated == 0
    assert MapSet.size(rolled_back_handled) == 0
    # Every id an inbox logged as handled, its handler ran first.
    assert MapSet.subset?(MapSet.new(all_handled), MapSet.new(runs))
    # The kills and the crash did cut deliveries short.
    assert String.to_integer(retried) > 0
    for inbox <- inboxes, do: assert(handled[inbox] == committed[inbox])
    :pgsql.terminate(conn)
    kill_receiver(node)
  end
end
