defmodule ErlangCnode.Registry do
  @moduledoc """
  What this node offers to PostgreSQL, and who is connected.

  It knows the registered services (modules that `use ErlangCnode.Service`)
  by name, with their signatures, and the PostgreSQL backends connected to
  this node: each backend is a hidden node, seen here from `nodeup` to
  `nodedown`.

      iex> ErlangCnode.Registry.register(ErlangCnode.Demo)
      :ok
      iex> ErlangCnode.Registry.lookup("demo")
      {:ok, ErlangCnode.Demo}
  """
  use GenServer

  @table __MODULE__

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "Registers a service module; a later module with the same name replaces it."
  @spec register(module) :: :ok
  def register(module) do
    unless Code.ensure_loaded?(module) and
             function_exported?(module, :__erlang_cnode_service__, 0) do
      raise ArgumentError, "#{inspect(module)} does not `use ErlangCnode.Service`"
    end

    GenServer.call(__MODULE__, {:register, module})
  end

  @doc "Removes the service called `name`."
  @spec unregister(String.t()) :: :ok
  def unregister(name), do: GenServer.call(__MODULE__, {:unregister, name})

  @doc "The module of the service called `name`."
  @spec lookup(String.t()) :: {:ok, module} | :error
  def lookup(name) when is_binary(name) do
    case :ets.lookup(@table, {:service, name}) do
      [{_, module}] -> {:ok, module}
      [] -> :error
    end
  end

  def lookup(_name), do: :error

  @doc """
  Every registered service: `{name, module}`, by name.

      iex> ErlangCnode.Registry.register(ErlangCnode.Demo)
      iex> {"demo", ErlangCnode.Demo} in ErlangCnode.Registry.services()
      true
  """
  @spec services() :: [{String.t(), module}]
  def services do
    @table
    |> :ets.match({{:service, :"$1"}, :"$2"})
    |> Enum.map(&List.to_tuple/1)
    |> Enum.sort()
  end

  @doc """
  The hidden nodes connected to this node: the PostgreSQL backends
  (`postgres_<pid>_<random>@host` unless `erlang_cnode.node_prefix` says
  otherwise), and any other hidden node, such as a remote shell.
  """
  @spec backends() :: [node]
  def backends, do: GenServer.call(__MODULE__, :backends)

  @doc """
  Every callable function, as `erlang_services(node)` shows it in SQL: one
  map per function with `"service"`, `"function"`, `"arguments"` (a list of
  `%{"name" => …, "type" => …}`) and `"returns"`.
  """
  @spec sql_services() :: [map]
  def sql_services do
    for {name, module} <- services(),
        call <- module.__erlang_cnode_service__().calls do
      %{
        "service" => name,
        "function" => Atom.to_string(call.name),
        "arguments" =>
          for(
            {arg, type} <- call.args,
            do: %{"name" => Atom.to_string(arg), "type" => ErlangCnode.Types.to_data(type)}
          ),
        "returns" => ErlangCnode.Types.to_data(call.returns)
      }
    end
  end

  @doc false
  # The table outlives the Registry process (it is made by the application
  # before the supervisor starts), so a Registry restart loses nothing.
  def create_table do
    :ets.new(@table, [:named_table, :public, read_concurrency: true])
    :ok
  end

  @impl true
  def init(_opts) do
    :ok = :net_kernel.monitor_nodes(true, node_type: :hidden)
    backends = MapSet.new(Node.list(:hidden))

    for module <- Application.get_env(:erlang_cnode, :services, []) do
      :ets.insert(@table, {{:service, module.__erlang_cnode_service__().name}, module})
    end

    {:ok, %{backends: backends}}
  end

  @impl true
  def handle_call({:register, module}, _from, state) do
    :ets.insert(@table, {{:service, module.__erlang_cnode_service__().name}, module})
    {:reply, :ok, state}
  end

  def handle_call({:unregister, name}, _from, state) do
    :ets.delete(@table, {:service, name})
    {:reply, :ok, state}
  end

  def handle_call(:backends, _from, state) do
    {:reply, state.backends |> MapSet.to_list() |> Enum.sort(), state}
  end

  def handle_call(_unknown, _from, state), do: {:reply, {:error, :unknown_request}, state}

  @impl true
  def handle_info({:nodeup, node, _info}, state),
    do: {:noreply, %{state | backends: MapSet.put(state.backends, node)}}

  def handle_info({:nodedown, node, _info}, state),
    do: {:noreply, %{state | backends: MapSet.delete(state.backends, node)}}

  def handle_info(_stray, state), do: {:noreply, state}
end
