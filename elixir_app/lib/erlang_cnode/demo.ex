defmodule ErlangCnode.Demo do
  @moduledoc """
  The demo service the development node (`mix erlang_cnode.node`) offers.

      SELECT erlang_service_call('demo@host', 'demo', 'add', '{"a": 1, "b": 2}');  -- 3
  """
  use ErlangCnode.Service, name: "demo"

  @doc "`a + b`."
  defcall add(a :: integer, b :: integer) :: integer do
    a + b
  end

  @doc "Its argument, unchanged."
  defcall echo(value :: any) :: any do
    value
  end

  @doc "Says hello, in one of a fixed set of tones."
  defcall greet(name :: string, tone :: optional(atom([:plain, :loud]))) :: string do
    case tone do
      :loud -> String.upcase("hello, #{name}!")
      _ -> "hello, #{name}"
    end
  end
end
