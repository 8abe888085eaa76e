defmodule ErlangCnode.DispatcherTest do
  use ExUnit.Case
  # Crashing services are expected here; their reports would be noise.
  @moduletag :capture_log
  alias ErlangCnode.{Dispatcher, Registry}
  alias ErlangCnode.TestServices.Accounts
  doctest ErlangCnode.Dispatcher

  setup do
    Registry.register(Accounts)
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
    before = length(Task.Supervisor.children(ErlangCnode.TaskSupervisor))
    assert {:error, :timeout, _} = Dispatcher.call("accounts", "slow", %{"ms" => 60_000}, 50)
    assert length(Task.Supervisor.children(ErlangCnode.TaskSupervisor)) == before
  end
end
