defmodule Mix.Tasks.ErlangCnode.NodeTest do
  # Runs `mix erlang_cnode.node` as its own OS process and reaches it from
  # this (distributed) test node, as PostgreSQL would.
  use ExUnit.Case
  @moduletag timeout: 120_000

  test "starts a named node with the demo service and the demo inbox" do
    name = "mixnode_#{System.unique_integer([:positive])}"
    cookie = Atom.to_string(Node.get_cookie())
    mix = System.find_executable("mix")

    port =
      Port.open({:spawn_executable, mix}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        args: ["erlang_cnode.node", "--name", name],
        cd: File.cwd!(),
        env: [{~c"ERLANG_COOKIE", String.to_charlist(cookie)}, {~c"MIX_ENV", ~c"test"}]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    on_exit(fn -> System.cmd("kill", ["#{os_pid}"]) end)
    output = await_output(port, "is up", "")
    refute output =~ cookie, "the cookie was printed"
    [_, started] = Regex.run(~r/node (\S+) is up/, output)
    node = String.to_atom(started)
    assert started =~ ~r/^#{name}@/

    assert :erpc.call(node, ErlangCnode.Dispatcher, :call, [
             "demo",
             "add",
             %{"a" => 1, "b" => 2},
             1000
           ]) ==
             {:ok, 3}

    assert {"demo", ErlangCnode.Demo} in :erpc.call(node, ErlangCnode.Registry, :services, [])
    send({:demo, node}, {:hello, :from_test})
    assert await_output(port, "demo received", "") =~ "{:hello, :from_test}"
  end

  test "bad options are refused with the way to get help" do
    {output, status} =
      System.cmd("mix", ["erlang_cnode.node", "--nmae", "x"],
        stderr_to_stdout: true,
        env: [{"MIX_ENV", "test"}]
      )

    assert status != 0
    assert output =~ "mix help erlang_cnode.node"
  end

  defp await_output(port, marker, seen) do
    if seen =~ marker do
      seen
    else
      receive do
        {^port, {:data, data}} ->
          await_output(port, marker, seen <> data)

        {^port, {:exit_status, status}} ->
          flunk("mix erlang_cnode.node exited (#{status}):\n#{seen}")
      after
        60_000 -> flunk("no #{inspect(marker)} from mix erlang_cnode.node:\n#{seen}")
      end
    end
  end
end
