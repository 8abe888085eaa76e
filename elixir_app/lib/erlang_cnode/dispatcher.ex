defmodule ErlangCnode.Dispatcher do
  @moduledoc """
  Runs service calls from SQL. `erlang_service_call(node, service, function,
  args, timeout_ms)` in PostgreSQL calls `sql_call/4` here, with the
  arguments as JSON text; Elixir code can call `call/4` with a map.

  The arguments are checked and converted against the function's signature
  in the caller, before anything runs; the result is checked against the
  declared return type. A call from SQL (`sql_call/4`) runs in the process
  it came in (see there). A call from Elixir (`call/4`) runs in a task its
  caller starts (a process it monitors, not linked), which answers the
  caller directly; the caller waits for the answer until the timeout, and
  kills the task past it. Nothing stands between a call and its function:
  no process is asked anything on the way.

  Dispatcher processes keep time for SQL's calls and watch `call/4`'s
  tasks, off that path (told without waiting): a task whose caller is gone
  is killed even if it traps exits. Nothing a service does — crash, hang,
  trap exits, return nonsense — takes a dispatcher down. There is one
  dispatcher per scheduler (`partitions/0`), each call served by the one
  its caller's pid hashes to; the first is registered as
  `ErlangCnode.Dispatcher`. `running/0` counts `call/4`'s tasks under way.

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
  `call/4` as SQL makes it: the arguments as JSON text (an object), decoded
  on this node without making new atoms, so no argument from SQL can create
  one.

  Only for a process spawned for this one call, as the PostgreSQL backend
  spawns it (and kills it when the query is cancelled): the function runs
  in it, with no task to hand over to (on a busy machine, waking another
  process costs more than most services take), and past `timeout` its
  dispatcher stops it with the exit reason `{:erlang_cnode_timeout,
  message}`, which the backend reports as the `:timeout` answer (SQLSTATE
  `57014`). A function that traps exits runs on until the backend's own
  deadline, a little later, kills it; one that ends past its timeout
  anyway answers `:timeout`, not its result. Links the function made are
  undone before the process ends (it ends with a reason that would take
  linked processes with it), so what it started with `spawn_link` lives
  on as it would after a task.
  """
  @spec sql_call(String.t(), String.t(), String.t(), pos_integer) ::
          {:ok, term} | {:error, kind, String.t()}
  def sql_call(service, function, json, timeout) when is_binary(json) do
    case ErlangCnode.Term.from_json(json) do
      {:ok, args} -> call(service, function, args, timeout, &run_here/4)
      {:error, {kind, message}} -> {:error, :invalid_arguments, "args: #{kind}: #{message}"}
    end
  end

  # Runs the function in the calling process (see `sql_call/4`). A timer
  # of the runtime's, not a message: nothing else runs unless the call
  # overruns.
  defp run_here(module, signature, argv, timeout) do
    started = System.monotonic_time(:millisecond)
    timer = :erlang.start_timer(timeout, dispatcher(), {:overran, self(), signature.name})
    answer = answer(module, signature, argv)
    :erlang.cancel_timer(timer, async: true, info: false)
    unlink_all()

    # Past its time (the dispatcher late, or the function trapping the
    # exit): a timeout all the same.
    if System.monotonic_time(:millisecond) - started > timeout,
      do: {:error, :timeout, overran(signature.name)},
      else: answer
  end

  # The links the function made: undone, so that the end of this process
  # (never `normal`: erpc ends it with its answer) takes nothing with it.
  defp unlink_all do
    case Process.info(self(), :links) do
      {:links, links} -> Enum.each(links, &Process.unlink/1)
      nil -> :ok
    end
  end

  @doc """
  Calls `function` of `service` with `args` (a map of argument names to
  JSON values), giving it `timeout` milliseconds.
  """
  @spec call(String.t(), String.t(), map, pos_integer) ::
          {:ok, term} | {:error, kind, String.t()}
  def call(service, function, args, timeout),
    do: call(service, function, args, timeout, &run_watched/4)

  # Checks the call, then has `run` run it.
  defp call(service, function, args, timeout, run)
       when is_integer(timeout) and timeout > 0 and timeout <= 0xFFFFFFFF do
    with {:ok, module} <- find_service(service),
         {:ok, signature} <- find_function(module, service, function),
         {:ok, argv} <- check_args(signature, args) do
      run.(module, signature, argv, timeout)
    end
  end

  defp call(_service, _function, _args, timeout, _run),
    do:
      {:error, :invalid_arguments,
       "timeout: expected a positive integer of milliseconds, got #{inspect(timeout)}"}

  # The dispatcher that serves the calling process.
  defp dispatcher, do: partition(:erlang.phash2(self(), partitions()))

  # The `:timeout` answer's message.
  defp overran(name), do: "#{name} did not finish in time and was stopped"

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

  # Runs the function in a task of the caller's and waits for its answer
  # until `timeout`. The task first asks its dispatcher to watch it (a
  # cast: nobody waits), so that it is watched even if the caller is killed
  # the moment after starting it. The answer comes to an alias, so that
  # one sent after the caller gave up is dropped, not left in the caller's
  # mailbox.
  defp run_watched(module, signature, argv, timeout) do
    caller = self()
    dispatcher = dispatcher()
    reply_to = :erlang.alias()

    {pid, task} =
      spawn_monitor(fn ->
        GenServer.cast(dispatcher, {:watch, self(), caller})
        send(reply_to, {reply_to, answer(module, signature, argv)})
      end)

    receive do
      {^reply_to, answer} ->
        :erlang.unalias(reply_to)
        Process.demonitor(task, [:flush])
        answer

      # Died without answering: killed by someone else (an answer is sent
      # before the task ends, so it would have come first).
      {:DOWN, ^task, :process, _, reason} ->
        :erlang.unalias(reply_to)
        {:error, :crashed, Exception.format_exit(reason)}
    after
      timeout ->
        :erlang.unalias(reply_to)
        # :kill, not a shutdown a task trapping exits could sit out.
        Process.exit(pid, :kill)
        Process.demonitor(task, [:flush])

        receive do
          {^reply_to, _late} -> :ok
        after
          0 -> :ok
        end

        {:error, :timeout, overran(signature.name)}
    end
  end

  # The task's work: run, check the result; a crash is an answer too.
  defp answer(module, signature, argv) do
    result = apply(module, signature.name, argv)

    case Types.check(signature.returns, result, "result") do
      {:ok, _} -> {:ok, Types.encode(signature.returns, result)}
      {:error, message} -> {:error, :invalid_result, message}
    end
  catch
    kind, reason -> {:error, :crashed, Exception.format(kind, reason, __STACKTRACE__)}
  end

  @doc "How many tasks of `call/4` are under way on this node."
  @spec running() :: non_neg_integer
  def running do
    for i <- 0..(partitions() - 1), reduce: 0 do
      sum -> sum + GenServer.call(partition(i), :running)
    end
  end

  @impl true
  def init(_opts), do: {:ok, %{}}

  @impl true
  def handle_call(:running, _from, watched),
    do: {:reply, Enum.count(watched, fn {_, entry} -> is_map(entry) end), watched}

  def handle_call(_unknown, _from, watched), do: {:reply, {:error, :unknown_request}, watched}

  @impl true
  # A task to watch, and its caller. Either may be gone already: a monitor
  # of a process that is gone fires at once.
  def handle_cast({:watch, pid, caller}, watched) when is_pid(pid) and is_pid(caller) do
    task = Process.monitor(pid)
    caller_monitor = Process.monitor(caller)

    {:noreply,
     watched
     |> Map.put(task, %{pid: pid, caller: caller_monitor})
     |> Map.put(caller_monitor, {:caller_of, task})}
  end

  def handle_cast(_unknown, watched), do: {:noreply, watched}

  @impl true
  def handle_info({:DOWN, ref, :process, _pid, _reason}, watched) when is_map_key(watched, ref) do
    case Map.pop(watched, ref) do
      {{:caller_of, task}, watched} ->
        # The caller is gone (a cancelled query): stop its task.
        {:noreply, stop_task(watched, task)}

      # The task ended: nothing more to watch.
      {entry, watched} ->
        Process.demonitor(entry.caller, [:flush])
        {:noreply, Map.delete(watched, entry.caller)}
    end
  end

  # A call from SQL overran: its process is stopped, and says why.
  def handle_info({:timeout, _timer, {:overran, caller, name}}, watched) when is_pid(caller) do
    Process.exit(caller, {:erlang_cnode_timeout, overran(name)})

    {:noreply, watched}
  end

  def handle_info(_stale, watched), do: {:noreply, watched}

  defp stop_task(watched, task) do
    case Map.pop(watched, task) do
      {nil, watched} ->
        watched

      {entry, watched} ->
        # :kill, not a shutdown a task trapping exits could sit out.
        Process.exit(entry.pid, :kill)
        Process.demonitor(task, [:flush])
        Map.delete(watched, entry.caller)
    end
  end
end
