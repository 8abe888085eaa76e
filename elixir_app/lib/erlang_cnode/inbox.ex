defmodule ErlangCnode.Inbox do
  @moduledoc """
  A receiver for messages PostgreSQL sends at commit with
  `erlang_send_on_commit` (docs/delivery.md): each message is handled
  exactly once, even when this node, PostgreSQL or the network fail
  mid-stream.

      defmodule MyApp.Orders do
        use ErlangCnode.Inbox, name: :orders

        @impl true
        def handle_delivery(id, message) do
          MyApp.Fulfilment.start(message)
          :ok
        end
      end

      # in the application's supervision tree
      children = [{MyApp.Orders, dir: "/var/lib/my_app/inbox"}]

  and from SQL, in the transaction that creates the order:

      SELECT erlang_send_on_commit('app', 'orders', jsonb_build_object('id', 42));

  The inbox is a process registered under `name`. PostgreSQL's worker sends
  it `{:"$erlang_cnode_delivery", id, message, ack_to}` and sends it again,
  with the same id, until the inbox answers `{:"$erlang_cnode_ack", id}`
  (`ErlangCnode.Inbox.Protocol`). The inbox:

    1. acknowledges at once an id it has handled before (a resend after a
       lost acknowledgement, a restart of either side);
    2. otherwise calls `c:handle_delivery/2`; when it returns `:ok` (or
       `{:ok, _}`), writes the id to its log, then acknowledges.

  Anything else — `{:error, reason}`, a raise, an exit, a throw — is logged
  and not acknowledged: PostgreSQL tries again later (with back-off) and
  after `erlang_cnode.max_attempts` marks the message dead in its
  `erlang_outbox` view.

  ## The log

  The ids handled are kept in `<dir>/<name>.ids` (8 bytes each), read back
  when the inbox starts, so de-duplication survives restarts of this node.
  `dir` comes from the `:dir` option, else the `:inbox_dir` setting of the
  `:erlang_cnode` application, else `erlang_cnode_inbox` under the system's
  temporary directory (set it in production: a temporary directory may be
  cleared). Each id is written with one `write(2)` before it is
  acknowledged, so a crash of this node (even `kill -9`) loses none; with
  `sync: true` it is also flushed to disk (`fdatasync`) before the
  acknowledgement, for power loss, at the cost of a disk flush per message.

  The one window left is between `c:handle_delivery/2` returning and its id
  reaching the log: if the node dies exactly then, the message is handled
  again after the restart. Make the handler's effect idempotent on `id`
  (ids are unique in the database forever) where that window matters.

  Messages to one inbox are handled one at a time, in the order their
  transactions committed. A message whose handler fails is retried later,
  and those after it may be handled first.
  """

  @typedoc "A message id: unique in its database, forever."
  @type id :: pos_integer()

  @doc """
  Handles one message. Return `:ok` (or `{:ok, term}`) to acknowledge it;
  anything else, or an exception, leaves it to be delivered again later.
  """
  @callback handle_delivery(id(), message :: term()) :: :ok | {:ok, term()} | {:error, term()}

  @doc false
  defmacro __using__(opts) do
    name = Keyword.fetch!(opts, :name)

    quote do
      @behaviour ErlangCnode.Inbox

      @doc "The inbox's name: the registered name `erlang_send_on_commit` sends to."
      def name, do: unquote(name)

      @doc "A child specification; `opts` as for `ErlangCnode.Inbox.start_link/3`."
      def child_spec(opts) do
        %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}}
      end

      @doc "Starts the inbox, linked (see `ErlangCnode.Inbox.start_link/3`)."
      def start_link(opts \\ []),
        do: ErlangCnode.Inbox.start_link(__MODULE__, unquote(name), opts)

      defoverridable child_spec: 1
    end
  end

  use GenServer

  alias ErlangCnode.Inbox.Protocol

  @doc """
  Starts an inbox registered as `name` that hands messages to `module`.

  Options: `:dir` (where its log lives) and `:sync` (flush each id to disk
  before acknowledging; default `false`).
  """
  def start_link(module, name, opts \\ []) do
    GenServer.start_link(__MODULE__, {module, name, opts}, name: name)
  end

  @doc "As `start_link/3`, not linked (for a node started by hand)."
  def start(module, name, opts \\ []) do
    GenServer.start(__MODULE__, {module, name, opts}, name: name)
  end

  @doc "The file that holds the ids an inbox named `name` has handled."
  def log_path(name, opts \\ []) do
    Path.join(dir(opts), "#{name}.ids")
  end

  @doc "The ids the inbox named `name` has handled, in the order it handled them."
  def handled(name, opts \\ []) do
    case File.read(log_path(name, opts)) do
      {:ok, bytes} -> ids(bytes)
      {:error, :enoent} -> []
    end
  end

  defp dir(opts) do
    Keyword.get_lazy(opts, :dir, fn ->
      Application.get_env(:erlang_cnode, :inbox_dir) ||
        Path.join(System.tmp_dir!(), "erlang_cnode_inbox")
    end)
  end

  # Whole records only: a write cut off by a crash left at most a partial
  # last one, which is dropped (its message was not acknowledged).
  defp ids(bytes) do
    whole = byte_size(bytes) - rem(byte_size(bytes), 8)
    for <<id::unsigned-64 <- binary_part(bytes, 0, whole)>>, do: id
  end

  @impl true
  def init({module, name, opts}) do
    path = log_path(name, opts)
    File.mkdir_p!(Path.dirname(path))
    handled = handled(name, opts)
    # Drop a partial last record before appending after it.
    :ok = truncate(path, length(handled) * 8)
    {:ok, log} = :file.open(path, [:raw, :binary, :append])
    seen = :ets.new(:erlang_cnode_inbox_seen, [:set, :private])
    :ets.insert(seen, Enum.map(handled, &{&1}))

    {:ok,
     %{module: module, name: name, log: log, seen: seen, sync: Keyword.get(opts, :sync, false)}}
  end

  defp truncate(path, size) do
    case File.stat(path) do
      {:ok, %{size: ^size}} ->
        :ok

      {:ok, _} ->
        {:ok, file} = :file.open(path, [:raw, :binary, :read, :write])
        {:ok, _} = :file.position(file, size)
        :ok = :file.truncate(file)
        :file.close(file)

      {:error, :enoent} ->
        :ok
    end
  end

  @impl true
  def handle_info(message, state) do
    case Protocol.delivery(message) do
      {:ok, id, payload, ack_to} ->
        deliver(id, payload, ack_to, state)

      :error ->
        :logger.warning("ErlangCnode.Inbox #{inspect(state.name)}: ignored #{inspect(message)}")
    end

    {:noreply, state}
  end

  defp deliver(id, payload, ack_to, state) do
    if :ets.member(state.seen, id) do
      send(ack_to, Protocol.ack(id))
    else
      case handle(state.module, id, payload) do
        :ok ->
          :ok = :file.write(state.log, <<id::unsigned-64>>)
          if state.sync, do: :ok = :file.datasync(state.log)
          :ets.insert(state.seen, {id})
          send(ack_to, Protocol.ack(id))

        {:failed, reason} ->
          :logger.warning(
            "ErlangCnode.Inbox #{inspect(state.name)}: message #{id} not handled " <>
              "(PostgreSQL will deliver it again): #{inspect(reason)}"
          )
      end
    end
  end

  defp handle(module, id, payload) do
    case module.handle_delivery(id, payload) do
      :ok -> :ok
      {:ok, _} -> :ok
      other -> {:failed, other}
    end
  catch
    kind, reason -> {:failed, {kind, reason}}
  end

  @impl true
  def terminate(_reason, state) do
    :file.close(state.log)
  end
end
