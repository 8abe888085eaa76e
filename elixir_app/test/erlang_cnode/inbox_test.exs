defmodule ErlangCnode.InboxTest do
  # One registered name for all: not async.
  use ExUnit.Case, async: false
  @moduletag :capture_log

  alias ErlangCnode.Inbox
  alias ErlangCnode.Inbox.Protocol

  doctest ErlangCnode.Inbox.Protocol

  defmodule Recorder do
    # Tells the test process about each message; fails on {:fail, _}.
    use ErlangCnode.Inbox, name: :erlang_cnode_inbox_test_recorder

    @impl true
    def handle_delivery(id, {:fail, reason}) do
      send(test_pid(), {:handled, id, :failing})
      {:error, reason}
    end

    def handle_delivery(id, :raise) do
      send(test_pid(), {:handled, id, :raising})
      raise "boom"
    end

    def handle_delivery(id, message) do
      send(test_pid(), {:handled, id, message})
      :ok
    end

    defp test_pid, do: :persistent_term.get({__MODULE__, :test})
  end

  setup do
    dir = Path.join(System.tmp_dir!(), "inbox_test_#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    :persistent_term.put({Recorder, :test}, self())
    %{dir: dir}
  end

  setup do
    on_exit(fn ->
      if pid = Process.whereis(Recorder.name()), do: Process.exit(pid, :kill)
    end)
  end

  defp start(dir) do
    {:ok, pid} = Inbox.start(Recorder, Recorder.name(), dir: dir)
    pid
  end

  defp stop(pid) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^ref, _, _, _}
  end

  defp deliver(id, message) do
    send(Recorder.name(), {:"$erlang_cnode_delivery", id, message, self()})
  end

  test "handles a delivery once and acknowledges it, also when it comes again", %{dir: dir} do
    pid = start(dir)
    deliver(1, %{"n" => 1})
    assert_receive {:handled, 1, %{"n" => 1}}
    assert_receive {:"$erlang_cnode_ack", 1}
    deliver(1, %{"n" => 1})
    assert_receive {:"$erlang_cnode_ack", 1}
    refute_received {:handled, 1, _}
    stop(pid)
  end

  test "remembers what it handled across a kill and restart", %{dir: dir} do
    pid = start(dir)
    for id <- [5, 3, 9], do: deliver(id, id)
    for id <- [5, 3, 9], do: assert_receive({:handled, ^id, ^id})
    for id <- [5, 3, 9], do: assert_receive({:"$erlang_cnode_ack", ^id})
    stop(pid)
    pid = start(dir)
    for id <- [3, 9, 10], do: deliver(id, id)
    assert_receive {:handled, 10, 10}
    for id <- [3, 9, 10], do: assert_receive({:"$erlang_cnode_ack", ^id})
    refute_received {:handled, 3, _}
    refute_received {:handled, 9, _}
    assert Inbox.handled(Recorder.name(), dir: dir) == [5, 3, 9, 10]
    stop(pid)
  end

  test "does not acknowledge a message whose handler fails or raises", %{dir: dir} do
    pid = start(dir)
    deliver(20, {:fail, :not_now})
    deliver(21, :raise)
    deliver(22, :fine)
    assert_receive {:handled, 20, :failing}
    assert_receive {:handled, 21, :raising}
    assert_receive {:"$erlang_cnode_ack", 22}
    refute_received {:"$erlang_cnode_ack", 20}
    refute_received {:"$erlang_cnode_ack", 21}
    # Delivered again later, it is handled again.
    deliver(20, :now_fine)
    assert_receive {:handled, 20, :now_fine}
    assert_receive {:"$erlang_cnode_ack", 20}
    stop(pid)
  end

  test "drops a record cut off by a crash and appends after it", %{dir: dir} do
    path = Inbox.log_path(Recorder.name(), dir: dir)
    File.mkdir_p!(dir)
    File.write!(path, <<7::unsigned-64, 1, 2, 3>>)
    pid = start(dir)
    deliver(7, :again)
    assert_receive {:"$erlang_cnode_ack", 7}
    refute_received {:handled, 7, _}
    deliver(8, :new)
    assert_receive {:"$erlang_cnode_ack", 8}
    assert File.read!(path) == <<7::unsigned-64, 8::unsigned-64>>
    stop(pid)
  end

  test "ignores what is not a delivery" do
    assert Protocol.delivery({:"$erlang_cnode_delivery", "1", :m, self()}) == :error
    assert Protocol.delivery({:"$erlang_cnode_delivery", 1, :m, :not_a_pid}) == :error
  end
end
