defmodule ErlangCnode.Dispatcher do
  @moduledoc """
  Runs service calls from SQL. `erlang_service_call(node, service, function,
  args, timeout_ms)` in PostgreSQL calls `sql_call/4` here, with the
  arguments as JSON text; Elixir code can call `call/4` with a map.

  The arguments are checked and converted against the function's signature
  in the caller, before anything runs. The function then runs in a task
  under `ErlangCnode.TaskSupervisor`, started by a dispatcher process; the
  task checks the result against the declared return type and answers the
  caller itself. The dispatcher only keeps time: it kills a task that
  outlives its timeout, or whose caller is gone (a cancelled query).
  Nothing a service does — crash, hang, trap exits, return nonsense — takes
  a dispatcher down.

  There is one dispatcher per scheduler (`partitions/0`), each caller
  served by the one its pid hashes to, so concurrent calls from many
  PostgreSQL backends do not queue behind one process. The first is
  registered as `ErlangCnode.Dispatcher`.

  The answer is `{:ok, result}`, with the result in the plain JSON its type
  promises (see `ErlangCnode.Types.encode/2`), or `{:error, kind, message}`
  with `kind` one of `:unknown_service`, `:unknown_function`,
  `:invalid_arguments`, `:invalid_result`, `:crashed` and `:timeout`.

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

  # How much longer than a call's own timeout its caller waits for the
  # dispatcher's answer (which, on an overrun, is :timeout).
  @grace 1_000

  @doc false
  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: Keyword.get(opts, :name, __MODULE__))
  end

  @doc "How many dispatcher processes share the calls: one per scheduler."
  @spec partitions() :: pos_integer
  def partitions, do: max(System.schedulers_online(), 1)

  @doc "The registered name of dispatcher `i` (0 is `ErlangCnode.Dispatcher`)."
  @spec partition(non_neg_integer) :: atom
  def partition(0), do: __MODULE__
  def partition(i) when is_integer(i) and i > 0, do: Module.concat(__MODULE__, "P#{i}")

  @doc false
  # The supervisor's children: one dispatcher per partition.
  def child_specs do
    for i <- 0..(partitions() - 1) do
      Supervisor.child_spec({__MODULE__, name: partition(i)}, id: partition(i))
    end
  end

  @doc """
  `call/4` with the arguments as JSON text (an object), as SQL sends them.
  The text is decoded on this node without making new atoms, so no
  argument from SQL can create one.
  """
  @spec sql_call(String.t(), String.t(), String.t(), pos_integer) ::
          {:ok, term} | {:error, kind, String.t()}
  def sql_call(service, function, json, timeout) when is_binary(json) do
    case ErlangCnode.Term.from_json(json) do
      {:ok, args} -> call(service, function, args, timeout)
      {:error, {kind, message}} -> {:error, :invalid_arguments, "args: #{kind}: #{message}"}
    end
  end

  @doc """
  Calls `function` of `service` with `args` (a map of argument names to
  JSON values), giving it `timeout` milliseconds.
  """
  @spec call(String.t(), String.t(), map, pos_integer) ::
          {:ok, term} | {:error, kind, String.t()}
  def call(service, function, args, timeout)
      when is_integer(timeout) and timeout > 0 and timeout <= 0xFFFFFFFF - @grace do
    with {:ok, module} <- find_service(service),
         {:ok, signature} <- find_function(module, service, function),
         {:ok, argv} <- check_args(signature, args) do
      dispatcher = partition(:erlang.phash2(self(), partitions()))
      GenServer.call(dispatcher, {:run, module, signature, argv, timeout}, timeout + @grace)
    end
  end

  def call(_service, _function, _args, timeout),
    do:
      {:error, :invalid_arguments,
       "timeout: expected a positive integer of milliseconds, got #{inspect(timeout)}"}

  defp find_service(service) do
    case Registry.lookup(service) do
      {:ok, module} -> {:ok, module}
      :error -> {:error, :unknown_service, "no service #{inspect(service)} on node #{node()}"}
    end
  end

  defp find_function(module, service, function) do
    found =
      is_binary(function) &&
        Enum.find(module.__erlang_cnode_service__().calls, &(Atom.to_string(&1.name) == function))

    case found do
      signature when is_map(signature) ->
        {:ok, signature}

      _ ->
        {:error, :unknown_function,
         "service #{inspect(service)} has no function #{inspect(function)}"}
    end
  end

  defp check_args(signature, args) when is_map(args) do
    case Types.check({:map, signature.args}, args, "args") do
      {:ok, checked} -> {:ok, for({name, _} <- signature.args, do: Map.fetch!(checked, name))}
      {:error, message} -> {:error, :invalid_arguments, message}
    end
  end

  defp check_args(_signature, _args),
    do: {:error, :invalid_arguments, "args: expected an object of named arguments"}

  # The task: run, check the result, answer the caller directly (a reply
  # after the caller gave up is dropped by its alias).
  defp run(from, module, signature, argv) do
    answer =
      try do
        result = apply(module, signature.name, argv)

        case Types.check(signature.returns, result, "result") do
          {:ok, _} -> {:ok, Types.encode(signature.returns, result)}
          {:error, message} -> {:error, :invalid_result, message}
        end
      catch
        kind, reason -> {:error, :crashed, Exception.format(kind, reason, __STACKTRACE__)}
      end

    GenServer.reply(from, answer)
  end

  @impl true
  def init(_opts), do: {:ok, %{}}

  @impl true
  def handle_call({:run, module, signature, argv, timeout}, {caller, _} = from, running) do
    {:ok, pid} =
      Task.Supervisor.start_child(
        ErlangCnode.TaskSupervisor,
        fn -> run(from, module, signature, argv) end,
        restart: :temporary
      )

    task = Process.monitor(pid)
    caller_monitor = Process.monitor(caller)
    timer = Process.send_after(self(), {:overran, task}, timeout)

    entry = %{pid: pid, from: from, timer: timer, caller: caller_monitor, name: signature.name}
    {:noreply, running |> Map.put(task, entry) |> Map.put(caller_monitor, {:caller_of, task})}
  end

  def handle_call(_unknown, _from, running), do: {:reply, {:error, :unknown_request}, running}

  @impl true
  # The task ended: it answered, or it died without answering.
  def handle_info({:DOWN, ref, :process, _pid, reason}, running) when is_map_key(running, ref) do
    case Map.pop(running, ref) do
      {{:caller_of, task}, running} ->
        # The caller is gone (a cancelled query): stop its task.
        {:noreply, stop_task(running, task)}

      {entry, running} ->
        Process.cancel_timer(entry.timer)
        Process.demonitor(entry.caller, [:flush])

        if reason != :normal do
          GenServer.reply(entry.from, {:error, :crashed, Exception.format_exit(reason)})
        end

        {:noreply, Map.delete(running, entry.caller)}
    end
  end

  def handle_info({:overran, task}, running) when is_map_key(running, task) do
    %{from: from, name: name} = running[task]
    GenServer.reply(from, {:error, :timeout, "#{name} did not finish in time and was stopped"})
    {:noreply, stop_task(running, task)}
  end

  def handle_info(_stale, running), do: {:noreply, running}

  defp stop_task(running, task) do
    case Map.pop(running, task) do
      {nil, running} ->
        running

      {entry, running} ->
        # :kill, not a shutdown a task trapping exits could sit out.
        Process.exit(entry.pid, :kill)
        Process.demonitor(task, [:flush])
        Process.demonitor(entry.caller, [:flush])
        Process.cancel_timer(entry.timer)
        Map.delete(running, entry.caller)
    end
  end
end
