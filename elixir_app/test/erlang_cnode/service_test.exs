defmodule ErlangCnode.ServiceTest do
  use ExUnit.Case, async: true

  test "defcall records signatures and defines plain functions" do
    %{name: "demo", calls: calls} = ErlangCnode.Demo.__erlang_cnode_service__()
    add = Enum.find(calls, &(&1.name == :add))
    assert add == %{name: :add, args: [a: :integer, b: :integer], returns: :integer}
    assert ErlangCnode.Demo.add(2, 3) == 5
    assert ErlangCnode.Demo.greet("ada", :loud) == "HELLO, ADA!"
  end

  test "types may be written as typespecs are: integer()" do
    [{module, _}] =
      Code.compile_string("""
      defmodule GoodService#{System.unique_integer([:positive])} do
        use ErlangCnode.Service, name: "good"
        defcall f(x :: integer(), ys :: list(string())) :: integer() do
          x + length(ys)
        end
      end
      """)

    assert [%{args: [x: :integer, ys: {:list, :string}], returns: :integer}] =
             module.__erlang_cnode_service__().calls
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

    for {source, message} <- [
          {"defcall f(x :: integer) :: integer when x > 0 do\n x\n end",
           ~r/does not take guards/},
          {"defcall f(x :: integer) :: integer do\n x\n rescue\n _ -> 0\n end",
           ~r/do block only/},
          {"defcall f(_x :: integer) :: integer do\n 1\n end", ~r/cannot start with _/},
          {"defcall f(x :: integer, x :: string) :: integer do\n 1\n end", ~r/declared twice/},
          {"defcall f(x :: map(list(integer))) :: integer do\n 1\n end",
           ~r/map\(...\) takes the fields/},
          {"defcall f(x :: integer) :: integer do\n x\n end\n defcall f() :: integer do\n 1\n end",
           ~r/defined more than once/}
        ] do
      assert_raise ArgumentError, message, fn ->
        Code.compile_string("""
        defmodule BadService#{System.unique_integer([:positive])} do
          use ErlangCnode.Service, name: "bad"
          #{source}
        end
        """)
      end
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
