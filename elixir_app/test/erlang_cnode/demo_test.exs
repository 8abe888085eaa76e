defmodule ErlangCnode.DemoTest do
  use ExUnit.Case, async: true
  alias ErlangCnode.Demo

  test "the demo service's functions, as SQL reaches them" do
    assert Demo.add(2, 3) == 5
    assert Demo.echo(%{"any" => [1, nil]}) == %{"any" => [1, nil]}
    assert Demo.greet("ada", nil) == "hello, ada"
    assert Demo.greet("ada", :loud) == "HELLO, ADA!"
    assert %{name: "demo", calls: calls} = Demo.__erlang_cnode_service__()
    assert Enum.map(calls, & &1.name) == [:add, :echo, :greet]
  end
end
