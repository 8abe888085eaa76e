defmodule ErlangCnode.ApplicationTest do
  use ExUnit.Case

  test "the application supervises the registry and the dispatchers" do
    children = Supervisor.which_children(ErlangCnode.Supervisor)
    ids = Enum.map(children, &elem(&1, 0))
    assert ErlangCnode.Registry in ids
    assert ErlangCnode.Dispatcher in ids

    for i <- 0..(ErlangCnode.Dispatcher.partitions() - 1) do
      assert ErlangCnode.Dispatcher.partition(i) in ids
      assert is_pid(Process.whereis(ErlangCnode.Dispatcher.partition(i)))
    end
  end

  test "the service table outlives a registry restart" do
    ErlangCnode.Registry.register(ErlangCnode.Demo)
    old = Process.whereis(ErlangCnode.Registry)
    ref = Process.monitor(old)
    Process.exit(old, :kill)
    assert_receive {:DOWN, ^ref, :process, _, :killed}

    wait = fn wait ->
      Process.whereis(ErlangCnode.Registry) || (Process.sleep(10) && wait.(wait))
    end

    assert wait.(wait) != old
    assert {:ok, ErlangCnode.Demo} = ErlangCnode.Registry.lookup("demo")
  end
end
