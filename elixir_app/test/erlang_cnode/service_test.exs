defmodule ErlangCnode.ServiceTest do
  use ExUnit.Case, async: true

  test "defcall records signatures and defines plain functions" do
    %{name: "demo", calls: calls} = ErlangCnode.Demo.__erlang_cnode_service__()
    add = Enum.find(calls, &(&1.name == :add))
    assert add == %{name: :add, args: [a: :integer, b: :integer], returns: :integer}
    assert ErlangCnode.Demo.add(2, 3) == 5
    assert ErlangCnode.Demo.greet("ada", :loud) == "HELLO, ADA!"
  end

  test "bad declarations fail at compile time with a clear message" do
    assert_raise ArgumentError, ~r/unknown type/, fn ->
      Code.compile_string("""
      defmodule BadService do
        use ErlangCnode.Service, name: "bad"
        defcall f(x :: widget) :: integer do
          x
        end
      end
      """)
    end

    assert_raise ArgumentError, ~r/needs a return type/, fn ->
      Code.compile_string("""
      defmodule BadService2 do
        use ErlangCnode.Service, name: "bad"
        defcall f(x :: integer) do
          x
        end
      end
      """)
    end
  end
end
