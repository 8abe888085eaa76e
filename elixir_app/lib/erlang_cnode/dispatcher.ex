defmodule ErlangCnode.Dispatcher do
  @moduledoc """
  Runs service calls from SQL. `erlang_service_call(node, service, function,
  args, timeout_ms)` in PostgreSQL calls `call/4` here.

  The arguments are checked and converted against the function's signature
  before anything runs; the function then runs in a task under
  `ErlangCnode.TaskSupervisor`, started by the registered dispatcher process
  and killed if it outlives its timeout. A service that crashes or hangs
  never takes the dispatcher down.

  `call/4` answers `{:ok, result}` or `{:error, kind, message}`. The result
  is checked against the declared return type and given in the plain JSON
  that type promises (see `ErlangCnode.Types.encode/2`). `kind` is
  one of `:unknown_service`, `:unknown_function`, `:invalid_arguments`,
  `:invalid_result`, `:crashed` and `:timeout`.

      iex> ErlangCnode.Registry.register(ErlangCnode.Demo)
      iex> ErlangCnode.Dispatcher.call("demo", "add", %{"a" => 1, "b" => 2}, 1000)
      {:ok, 3}
      iex> ErlangCnode.Dispatcher.call("demo", "add", %{"a" => 1, "b" => "2"}, 1000)
      {:error, :invalid_arguments, ~s(args.b: expected integer, got "2")}
  """
  use GenServer

  alias ErlangCnode.{Registry, Types}

  @typedoc "Why a call failed."
  @type kind ::
          :unknown_service
          | :unknown_function
          | :invalid_arguments
          | :invalid_result
          | :crashed
          | :timeout

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  Calls `function` of `service` with `args` (a map of argument names to
  JSON values), giving it `timeout` milliseconds.
  """
  @spec call(String.t(), String.t(), map, pos_integer) ::
          {:ok, term} | {:error, kind, String.t()}
  def call(service, function, args, timeout)
      when is_integer(timeout) and timeout > 0 do
    with {:ok, module} <- find_service(service),
         {:ok, signature} <- find_function(module, service, function),
         {:ok, argv} <- check_args(signature, args) do
      # Waits a little longer than the task may run: the dispatcher itself
      # answers :timeout when the task overruns.
      GenServer.call(__MODULE__, {:run, module, signature, argv, timeout}, timeout + 5_000)
    end
  end

  def call(_service, _function, _args, timeout),
    do:
      {:error, :invalid_arguments,
       "timeout: expected a positive integer, got #{inspect(timeout)}"}

  defp find_service(service) do
    case Registry.lookup(service) do
      {:ok, module} -> {:ok, module}
      :error -> {:error, :unknown_service, "no service #{inspect(service)} on node #{node()}"}
    end
  end

  defp find_function(module, service, function) do
    signature =
      Enum.find(
        module.__erlang_cnode_service__().calls,
        &(is_binary(function) and Atom.to_string(&1.name) == function)
      )

    case signature do
      nil ->
        {:error, :unknown_function,
         "service #{inspect(service)} has no function #{inspect(function)}"}

      signature ->
        {:ok, signature}
    end
  end

  defp check_args(signature, args) when is_map(args) do
    case Types.check({:map, signature.args}, args, "args") do
      {:ok, checked} -> {:ok, for({name, _} <- signature.args, do: Map.fetch!(checked, name))}
      {:error, message} -> {:error, :invalid_arguments, message}
    end
  end

  defp check_args(_signature, args),
    do:
      {:error, :invalid_arguments,
       "args: expected an object of named arguments, got #{inspect(args)}"}

  @impl true
  def init(_opts), do: {:ok, %{}}

  @impl true
  def handle_call({:run, module, signature, argv, timeout}, from, running) do
    task =
      Task.Supervisor.async_nolink(ErlangCnode.TaskSupervisor, fn ->
        apply(module, signature.name, argv)
      end)

    timer = Process.send_after(self(), {:overran, task.ref}, timeout)
    {:noreply, Map.put(running, task.ref, {from, task, timer, signature})}
  end

  @impl true
  def handle_info({ref, result}, running) when is_map_key(running, ref) do
    Process.demonitor(ref, [:flush])
    {{from, _task, timer, signature}, running} = Map.pop(running, ref)
    Process.cancel_timer(timer)
    GenServer.reply(from, check_result(signature, result))
    {:noreply, running}
  end

  def handle_info({:DOWN, ref, :process, _pid, reason}, running) when is_map_key(running, ref) do
    {{from, _task, timer, _signature}, running} = Map.pop(running, ref)
    Process.cancel_timer(timer)
    GenServer.reply(from, {:error, :crashed, Exception.format_exit(reason)})
    {:noreply, running}
  end

  def handle_info({:overran, ref}, running) when is_map_key(running, ref) do
    {{from, task, _timer, signature}, running} = Map.pop(running, ref)
    Task.Supervisor.terminate_child(ErlangCnode.TaskSupervisor, task.pid)
    Process.demonitor(ref, [:flush])

    GenServer.reply(
      from,
      {:error, :timeout, "#{signature.name} did not finish in time and was stopped"}
    )

    {:noreply, running}
  end

  def handle_info(_stale, running), do: {:noreply, running}

  defp check_result(signature, result) do
    case Types.check(signature.returns, result, "result") do
      {:ok, _} -> {:ok, Types.encode(signature.returns, result)}
      {:error, message} -> {:error, :invalid_result, message}
    end
  end
end
