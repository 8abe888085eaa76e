defmodule ErlangCnode.DispatcherTest do
  use ExUnit.Case
  # Crashing services are expected here; their reports would be noise.
  @moduletag :capture_log
  alias ErlangCnode.{Dispatcher, Registry}
  alias ErlangCnode.TestServices.Accounts
  doctest ErlangCnode.Dispatcher

  setup do
    Registry.register(Accounts)
    Registry.register(ErlangCnode.Demo)
    :ok
  end

  test "arguments are checked and converted before the function runs" do
    args = %{"user" => %{"id" => 7}, "tags" => ["vip"]}

    assert Dispatcher.call("accounts", "find", args, 1000) ==
             {:ok, %{"id" => 7, "tags" => ["vip"]}}

    assert Dispatcher.call("accounts", "find", %{"user" => %{"id" => "x"}, "tags" => []}, 1000) ==
             {:error, :invalid_arguments, ~s(args.user.id: expected integer, got "x")}

    assert {:error, :invalid_arguments, "args.tags: missing"} =
             Dispatcher.call("accounts", "find", %{"user" => %{"id" => 1}}, 1000)
  end

  test "calls wait on no dispatcher: with every one held up, they are answered" do
    assert Dispatcher.partitions() == System.schedulers_online()
    dispatchers = for i <- 0..(Dispatcher.partitions() - 1), do: Dispatcher.partition(i)
    before = Dispatcher.running()
    Enum.each(dispatchers, &:sys.suspend/1)

    try do
      assert Dispatcher.call("demo", "add", %{"a" => 1, "b" => 2}, 1000) == {:ok, 3}
      assert {:error, :timeout, _} = Dispatcher.call("accounts", "slow", %{"ms" => 5_000}, 50)
    after
      Enum.each(dispatchers, &:sys.resume/1)
    end

    # Once back, they forget the tasks that ended meanwhile.
    wait_until(fn -> Dispatcher.running() <= before end)
  end

  test "unknown services and functions" do
    assert {:error, :unknown_service, _} = Dispatcher.call("nope", "f", %{}, 1000)
    assert {:error, :unknown_function, _} = Dispatcher.call("accounts", "nope", %{}, 1000)
  end

  test "a crash, a timeout and a wrong result leave the dispatcher running" do
    dispatcher = Process.whereis(Dispatcher)

    assert {:error, :crashed, message} =
             Dispatcher.call("accounts", "crash", %{"reason" => "boom"}, 1000)

    assert message =~ "boom"
    assert {:error, :timeout, _} = Dispatcher.call("accounts", "slow", %{"ms" => 5_000}, 100)

    assert {:error, :invalid_result, "result: expected integer, got " <> _} =
             Dispatcher.call("accounts", "wrong_result", %{}, 1000)

    assert Process.whereis(Dispatcher) == dispatcher
    assert Dispatcher.call("accounts", "slow", %{"ms" => 1}, 1000) == {:ok, "done"}
  end

  test "a timed-out task is stopped" do
    assert {:error, :timeout, _} = Dispatcher.call("accounts", "slow", %{"ms" => 60_000}, 50)
    wait_until(fn -> in_service(:slow) == 0 end)
  end

  test "a task that traps exits is still stopped, without holding up other calls" do
    call = Task.async(fn -> Dispatcher.call("accounts", "stubborn", %{"ms" => 60_000}, 100) end)
    Process.sleep(150)
    # Other calls go on meanwhile: nothing waits on the stubborn task.
    assert {:ok, 3} = Dispatcher.call("demo", "add", %{"a" => 1, "b" => 2}, 1000)
    assert {:error, :timeout, _} = Task.await(call, 2_000)
    # And it is gone, trapping exits or not.
    wait_until(fn -> in_service(:stubborn) == 0 end)
  end

  test "a caller killed while its task traps exits takes the task with it" do
    caller = spawn(fn -> Dispatcher.call("accounts", "stubborn", %{"ms" => 60_000}, 90_000) end)
    wait_until(fn -> in_service(:stubborn) == 1 end)
    # The dispatcher watches it (it counts it).
    wait_until(fn -> Dispatcher.running() >= 1 end)
    Process.exit(caller, :kill)
    wait_until(fn -> in_service(:stubborn) == 0 end)
  end

  test "results that do not fit their type are errors, and the dispatcher lives on" do
    dispatcher = Process.whereis(Dispatcher)
    assert {:error, :invalid_result, _} = Dispatcher.call("accounts", "improper", %{}, 1000)
    assert {:error, :invalid_result, _} = Dispatcher.call("accounts", "huge", %{}, 1000)
    assert Process.whereis(Dispatcher) == dispatcher
  end

  test "a caller that goes away takes its task with it" do
    caller = spawn(fn -> Dispatcher.call("accounts", "slow", %{"ms" => 60_000}, 90_000) end)
    wait_until(fn -> in_service(:slow) == 1 end)
    Process.exit(caller, :kill)
    wait_until(fn -> in_service(:slow) == 0 end)
  end

  test "stray messages and calls leave the dispatcher and the registry as they were" do
    for name <- [Dispatcher, Registry] do
      pid = Process.whereis(name)
      send(name, :stray)
      assert GenServer.call(name, :nonsense) == {:error, :unknown_request}
      assert Process.whereis(name) == pid
    end

    assert {:ok, ErlangCnode.TestServices.Accounts} = Registry.lookup("accounts")
  end

  test "a call from SQL runs in its caller, and is stopped past its timeout saying why" do
    json = ~s({"a": 1, "b": 2})
    assert Dispatcher.sql_call("demo", "add", json, 1000) == {:ok, 3}

    {caller, ref} =
      spawn_monitor(fn -> Dispatcher.sql_call("accounts", "slow", ~s({"ms": 60000}), 50) end)

    assert_receive {:DOWN, ^ref, :process, ^caller, {:erlang_cnode_timeout, message}}, 5_000
    assert message == "slow did not finish in time and was stopped"
    # A call that ends in time leaves no timer behind to stop it later.
    me = self()

    spawn(fn ->
      send(me, {:answer, Dispatcher.sql_call("accounts", "slow", ~s({"ms": 1}), 100)})
      Process.sleep(300)
      send(me, :still_alive)
    end)

    assert_receive {:answer, {:ok, "done"}}, 2_000
    assert_receive :still_alive, 2_000
  end

  test "what a call from SQL links to lives on after its process" do
    name = :"linked_worker_#{System.unique_integer([:positive])}"
    Process.register(self(), name)
    me = self()

    # As erpc ends it: never with `normal`.
    {caller, ref} =
      spawn_monitor(fn ->
        send(
          me,
          {:answer, Dispatcher.sql_call("accounts", "linked_worker", ~s({"to": "#{name}"}), 1000)}
        )

        exit({:erpc_like, :return})
      end)

    assert_receive {:worker, worker}, 2_000
    assert_receive {:answer, {:ok, true}}, 2_000
    assert_receive {:DOWN, ^ref, :process, ^caller, {:erpc_like, :return}}, 2_000
    Process.sleep(50)
    assert Process.alive?(worker)
    Process.exit(worker, :kill)
  end

  test "a call from SQL that traps the stop and ends late answers :timeout" do
    me = self()

    spawn(fn ->
      send(me, {:answer, Dispatcher.sql_call("accounts", "stubborn", ~s({"ms": 300}), 100)})
    end)

    assert_receive {:answer, {:error, :timeout, message}}, 5_000
    assert message =~ "did not finish in time"
  end

  test "SQL's JSON arguments make no atoms" do
    name = "never_made_#{System.unique_integer([:positive])}"
    json = ~s({"value": {"$atom": "#{name}"}})

    assert {:error, :invalid_arguments, "args: unknown_atom: " <> _} =
             Dispatcher.sql_call("demo", "echo", json, 1000)

    assert_raise ArgumentError, fn -> String.to_existing_atom(name) end
    assert Dispatcher.sql_call("demo", "echo", ~s({"value": [1, "x"]}), 1000) == {:ok, [1, "x"]}
  end

  defp wait_until(check), do: ErlangCnode.Test.Wait.until(check, 10)

  # Tasks of the test service's `function` under way.
  defp in_service(function), do: ErlangCnode.Test.Wait.running_in(Accounts, function)
end
