defmodule ErlangCnode.ErrorTest do
  use ExUnit.Case, async: true
  alias ErlangCnode.Error
  doctest ErlangCnode.Error

  test "the message names the kind, and unwrap! is the one place errors become exceptions" do
    error = Error.from({:unknown_atom, "no atom nope"})
    assert Exception.message(error) == "unknown_atom: no atom nope"
    assert Error.unwrap!({:ok, 1}) == 1

    assert_raise Error, "invalid_json: bad", fn ->
      Error.unwrap!({:error, {:invalid_json, "bad"}})
    end
  end
end
