defmodule ErlangCnode.Test.Postgres do
  @moduledoc false
  # A throwaway PostgreSQL cluster for end-to-end tests, started and stopped
  # by the harness scripts in test_harness/bin (the one implementation every
  # suite uses), reached over TCP on localhost with Debian's p1_pgsql client.

  @bin Path.expand("../../../test_harness/bin", __DIR__)

  defstruct [:dir, :port]

  @doc "Fails with how to fix it when something the tests need is missing."
  def check_prerequisites! do
    for {program, fix} <- [
          {"psql", "run scripts/setup (PostgreSQL 15)"},
          {"pg_config", "run scripts/setup (postgresql-server-dev-15)"},
          {"epmd", "run scripts/setup (Erlang/OTP)"}
        ] do
      System.find_executable(program) || raise "#{program} not found: #{fix}"
    end

    {sharedir, 0} = System.cmd(System.get_env("PG_CONFIG", "pg_config"), ["--sharedir"])
    control = Path.join([String.trim(sharedir), "extension", "erlang_cnode.control"])

    File.exists?(control) ||
      raise "the erlang_cnode extension is not installed (#{control}): " <>
              "scripts/install (scripts/test does, into a PostgreSQL of its own: PG_CONFIG)"

    {:module, :pgsql} == Code.ensure_loaded(:pgsql) ||
      raise "the p1_pgsql client is missing: run scripts/setup (erlang-p1-pgsql)"

    :ok
  end

  def start! do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :gen_tcp.close(socket)
    base = System.get_env("ERLANG_CNODE_TEST_DIR", "/var/tmp")

    dir =
      Path.join(base, "erlang_cnode-exunit_#{System.pid()}_#{System.unique_integer([:positive])}")

    cluster = %__MODULE__{dir: dir, port: port}
    script!(cluster, "start-postgres", ["--tcp"])
    cluster
  end

  @doc "Adds `settings` (lines of postgresql.conf); they apply from the next start or reload."
  def configure!(%__MODULE__{dir: dir}, settings) do
    File.write!(Path.join([dir, "data", "postgresql.conf"]), settings <> "\n", [:append])
  end

  @doc "Stops the server (`:immediate`: as a crash does) and starts it again."
  def restart!(%__MODULE__{} = cluster, mode \\ :fast) do
    script!(cluster, "stop-postgres", if(mode == :immediate, do: ["--immediate"], else: []))
    script!(cluster, "start-postgres", ["--tcp"])
  end

  def stop(%__MODULE__{} = cluster) do
    script(cluster, "stop-postgres", [])
    File.rm_rf(cluster.dir)
    :ok
  end

  def connect!(%__MODULE__{port: port}, database \\ "postgres") do
    {:ok, conn} =
      :pgsql.connect(
        host: "localhost",
        port: port,
        database: database,
        user: "postgres",
        password: ""
      )

    conn
  end

  @doc "Runs one statement: `{:ok, rows}` (text values) or `{:error, %{code:, message:, detail:}}`."
  def query(conn, sql) do
    case :pgsql.squery(conn, sql, 600_000) do
      {:ok, [{_tag, _columns, rows}]} ->
        {:ok, Enum.map(rows, fn row -> Enum.map(row, &text/1) end)}

      {:ok, [{_tag, []}]} ->
        {:ok, []}

      {:ok, [{:error, fields}]} ->
        {:error, error(fields)}

      {:ok, [other]} ->
        {:ok, other}

      other ->
        {:error, other}
    end
  end

  def query!(conn, sql) do
    case query(conn, sql) do
      {:ok, rows} -> rows
      {:error, error} -> raise "#{sql}: #{inspect(error)}"
    end
  end

  @doc "`text` as an SQL string literal."
  def literal(text), do: "'" <> String.replace(text, "'", "''") <> "'"

  defp text(nil), do: nil
  defp text(value) when is_list(value), do: List.to_string(value)
  defp text(value), do: value

  defp error(fields) do
    get = fn key ->
      case List.keyfind(fields, key, 0) do
        {_, value} -> text(value)
        nil -> nil
      end
    end

    %{code: get.(:code), message: get.(:message), detail: get.(:detail), hint: get.(:hint)}
  end

  defp script!(cluster, name, args) do
    case script(cluster, name, args) do
      {_, 0} -> :ok
      {output, status} -> raise "#{name} failed (#{status}):\n#{output}"
    end
  end

  defp script(cluster, name, args) do
    System.cmd(Path.join(@bin, name), ["--dir", cluster.dir, "--port", "#{cluster.port}" | args],
      stderr_to_stdout: true
    )
  end
end
