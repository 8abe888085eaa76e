defmodule Mix.Tasks.ErlangCnode.NodeTest do
  # Runs `mix erlang_cnode.node` as its own OS process and reaches it from
  # this (distributed) test node, as PostgreSQL would.
  use ExUnit.Case
  @moduletag timeout: 120_000

  test "starts a named node with the demo service and the demo inbox" do
    name = "mixnode_#{System.unique_integer([:positive])}"
    cookie = Atom.to_string(Node.get_cookie())

    {port, output} =
      start_node(["--name", name], [{~c"ERLANG_COOKIE", String.to_charlist(cookie)}])

    refute output =~ cookie, "the cookie was printed"
    node = started(output)
    assert Atom.to_string(node) =~ ~r/^#{name}@/

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

  test "--cookie and --service" do
    name = "mixnode_#{System.unique_integer([:positive])}"
    cookie = Atom.to_string(Node.get_cookie())
    args = ["--name", name, "--cookie", cookie, "--service", "ErlangCnode.TestServices.Accounts"]
    {_port, output} = start_node(args, [])
    refute output =~ cookie, "the cookie was printed"
    node = started(output)

    assert {:ok, ErlangCnode.TestServices.Accounts} =
             :erpc.call(node, ErlangCnode.Registry, :lookup, ["accounts"])
  end

  test "a dotted host gives a long name" do
    name = "mixnode_#{System.unique_integer([:positive])}"
    {_port, output} = start_node(["--name", "#{name}@127.0.0.1"], [])
    assert Atom.to_string(started(output)) == "#{name}@127.0.0.1"
  end

  defp start_node(args, env) do
    port =
      Port.open({:spawn_executable, System.find_executable("mix")}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        args: ["erlang_cnode.node" | args],
        cd: File.cwd!(),
        env: [{~c"MIX_ENV", ~c"test"} | env]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    on_exit(fn -> System.cmd("kill", ["#{os_pid}"]) end)
    {port, await_output(port, "is up", "")}
  end

  defp started(output) do
    [_, started] = Regex.run(~r/node (\S+) is up/, output)
    String.to_atom(started)
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
