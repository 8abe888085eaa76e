# Delivery at commit next to LISTEN/NOTIFY (BENCHMARKS.md).
#
#   MIX_ENV=test elixir --sname delivery_bench -S mix run elixir_app/bench/delivery.exs
#
# Starts a throwaway cluster with erlang_cnode preloaded (the PostgreSQL on
# PATH, or PG_CONFIG's), an ErlangCnode.Inbox on this node, and a LISTEN
# connection on this node (a minimal client of the PostgreSQL protocol:
# p1_pgsql has no notifications). Then, for each shape, the same messages
# through both:
#
#   - sustained rate: 100,000 messages committed 1, 100 and 10,000 per
#     transaction (1 per transaction from 8 connections at once, the others
#     from one), from the first statement to the last message handled;
#   - latency: 1 message per transaction at a steady 1,000 per second for
#     10 s, from the moment the client sends COMMIT to the moment the
#     handler runs on this node (both on this node's monotonic clock).

alias ErlangCnode.Test.Postgres

{:ok, _} = Application.ensure_all_started(:p1_pgsql)

defmodule Bench.Times do
  # Handled times by message, in an ETS table both receivers write.
  def new, do: :ets.new(:bench_times, [:set, :public, write_concurrency: true])
  def mark(table, key), do: :ets.insert(table, {key, System.monotonic_time(:microsecond)})
  def count(table), do: :ets.info(table, :size)
end

defmodule Bench.Inbox do
  use ErlangCnode.Inbox, name: :bench_inbox

  @impl true
  def handle_delivery(id, _message) do
    Bench.Times.mark(:persistent_term.get(:bench_table), {:inbox, id})
    :ok
  end
end

defmodule Bench.Listener do
  # LISTEN on one connection; each notification's payload (an integer) is
  # marked handled as it arrives.
  def start(port, table) do
    parent = self()
    pid = spawn_link(fn -> init(port, table, parent) end)

    receive do
      {:listening, ^pid} -> pid
    after
      10_000 -> raise "LISTEN connection not ready"
    end
  end

  defp init(port, table, parent) do
    {:ok, s} = :gen_tcp.connect(~c"localhost", port, [:binary, active: false, packet: :raw])
    params = "user\0postgres\0database\0postgres\0\0"
    body = <<196_608::32, params::binary>>
    :ok = :gen_tcp.send(s, <<byte_size(body) + 4::32, body::binary>>)
    ready(s)
    query = "LISTEN bench\0"
    :ok = :gen_tcp.send(s, <<?Q, byte_size(query) + 4::32, query::binary>>)
    ready(s)
    send(parent, {:listening, self()})
    loop(s, table)
  end

  defp message(s) do
    with {:ok, <<type, len::32>>} <- :gen_tcp.recv(s, 5),
         {:ok, body} <- if(len > 4, do: :gen_tcp.recv(s, len - 4), else: {:ok, <<>>}) do
      {type, body}
    else
      # The cluster stopped at the end of the run.
      {:error, :closed} -> exit(:normal)
    end
  end

  defp ready(s) do
    case message(s) do
      {?Z, _} -> :ok
      {?E, body} -> raise "PostgreSQL error: #{inspect(body)}"
      _ -> ready(s)
    end
  end

  defp loop(s, table) do
    case message(s) do
      {?A, <<_pid::32, rest::binary>>} ->
        [_channel, payload, _] = String.split(rest, "\0")
        Bench.Times.mark(table, {:notify, String.to_integer(payload)})

      _ ->
        :ok
    end

    loop(s, table)
  end
end

defmodule Bench do
  @total 100_000

  def main do
    Postgres.check_prerequisites!()
    cluster = Postgres.start!()

    try do
      Postgres.configure!(cluster, "shared_preload_libraries = 'erlang_cnode'")
      Postgres.restart!(cluster)
      conn = Postgres.connect!(cluster)
      Postgres.query!(conn, "CREATE EXTENSION erlang_cnode")
      node = Atom.to_string(node())
      cookie = Atom.to_string(Node.get_cookie())

      Postgres.query!(
        conn,
        "CREATE SERVER bench FOREIGN DATA WRAPPER erlang_cnode OPTIONS (node #{Postgres.literal(node)})"
      )

      Postgres.query!(
        conn,
        "CREATE USER MAPPING FOR PUBLIC SERVER bench OPTIONS (cookie #{Postgres.literal(cookie)})"
      )

      table = Bench.Times.new()
      :persistent_term.put(:bench_table, table)
      dir = Path.join(System.tmp_dir!(), "delivery_bench_#{System.pid()}")
      {:ok, _} = ErlangCnode.Inbox.start(Bench.Inbox, Bench.Inbox.name(), dir: dir)
      Bench.Listener.start(cluster.port, table)
      conns = for _ <- 1..8, do: Postgres.connect!(cluster)
      # Warm up both paths.
      rate(conns, table, :inbox, 1_000, 100)
      rate(conns, table, :notify, 1_000, 100)

      IO.puts("| shape | erlang_send_on_commit → Inbox | LISTEN/NOTIFY | ratio |")
      IO.puts("|---|---|---|---|")

      for per_tx <- [1, 100, 10_000] do
        inbox = rate(conns, table, :inbox, @total, per_tx)
        notify = rate(conns, table, :notify, @total, per_tx)

        IO.puts(
          "| 100,000 messages, #{per_tx} per transaction | #{round(inbox)} msg/s | " <>
            "#{round(notify)} msg/s | #{Float.round(inbox / notify, 2)}× |"
        )
      end

      {i50, i99} = latency(hd(conns), table, :inbox)
      {n50, n99} = latency(hd(conns), table, :notify)

      IO.puts(
        "| latency at 1,000 msg/s, median (p99) | #{ms(i50)} ms (#{ms(i99)}) | " <>
          "#{ms(n50)} ms (#{ms(n99)}) | #{Float.round(i50 / n50, 2)}× |"
      )

      File.rm_rf(dir)
    after
      Postgres.stop(cluster)
    end
  end

  defp ms(us), do: Float.round(us / 1000, 2)

  # The statement that queues `n` messages starting at `first`.
  defp enqueue(:inbox, first, n) do
    "SELECT count(erlang_send_on_commit('bench', 'bench_inbox', to_jsonb(g))) " <>
      "FROM generate_series(#{first}, #{first + n - 1}) g"
  end

  defp enqueue(:notify, first, n) do
    "SELECT count(pg_notify('bench', g::text)) FROM generate_series(#{first}, #{first + n - 1}) g"
  end

  defp transaction(conn, via, first, n) do
    {:ok, _} = :pgsql.squery(conn, "BEGIN")
    {:ok, [{_, _, [[_]]}]} = :pgsql.squery(conn, enqueue(via, first, n))
    {:ok, _} = :pgsql.squery(conn, "COMMIT")
  end

  # Messages per second, from the first statement to the last message
  # handled. Inbox ids are not known in advance: count what was handled.
  defp rate(conns, table, via, total, per_tx) do
    :ets.delete_all_objects(table)
    start = System.monotonic_time(:microsecond)
    transactions = div(total, per_tx)
    producers = if per_tx == 1, do: conns, else: [hd(conns)]
    share = div(transactions, length(producers))

    producers
    |> Enum.with_index()
    |> Enum.map(fn {conn, p} ->
      Task.async(fn ->
        for t <- 0..(share - 1) do
          transaction(conn, via, (p * share + t) * per_tx + 1, per_tx)
        end
      end)
    end)
    |> Enum.each(&Task.await(&1, :infinity))

    wait_for(table, share * length(producers) * per_tx)
    last = :ets.foldl(fn {_, t}, acc -> max(t, acc) end, start, table)
    share * length(producers) * per_tx / ((last - start) / 1_000_000)
  end

  defp wait_for(table, n) do
    deadline = System.monotonic_time(:millisecond) + 600_000

    Stream.repeatedly(fn -> Process.sleep(20) end)
    |> Enum.find(fn _ ->
      Bench.Times.count(table) >= n or System.monotonic_time(:millisecond) > deadline
    end)

    Bench.Times.count(table) >= n || raise "only #{Bench.Times.count(table)} of #{n} handled"
  end

  # Median and 99th percentile of commit-to-handled, in microseconds.
  defp latency(conn, table, via) do
    :ets.delete_all_objects(table)
    sent = :ets.new(:sent, [:set])
    start = System.monotonic_time(:microsecond)

    for i <- 1..10_000 do
      # Paced: message i is due i ms after the start.
      wait = start + i * 1000 - System.monotonic_time(:microsecond)
      if wait > 1000, do: Process.sleep(div(wait, 1000))
      {:ok, _} = :pgsql.squery(conn, "BEGIN")

      {:ok, [{_, _, [[id]]}]} =
        case via do
          :inbox ->
            :pgsql.squery(conn, "SELECT erlang_send_on_commit('bench', 'bench_inbox', '#{i}')")

          :notify ->
            :pgsql.squery(conn, "SELECT pg_notify('bench', '#{i}'), #{i}")
            |> then(fn {:ok, [{t, c, [[_, i]]}]} -> {:ok, [{t, c, [[i]]}]} end)
        end

      :ets.insert(
        sent,
        {{via, String.to_integer(to_string(id))}, System.monotonic_time(:microsecond)}
      )

      {:ok, _} = :pgsql.squery(conn, "COMMIT")
    end

    wait_for(table, 10_000)

    delays =
      :ets.foldl(
        fn {key, t0}, acc -> [hd(:ets.lookup(table, key)) |> elem(1) |> Kernel.-(t0) | acc] end,
        [],
        sent
      )
      |> Enum.sort()

    {Enum.at(delays, div(length(delays), 2)), Enum.at(delays, div(length(delays) * 99, 100))}
  end
end

Bench.main()
