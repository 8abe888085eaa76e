defmodule ErlangCnode.NativeTest do
  use ExUnit.Case, async: true

  alias ErlangCnode.Native

  # A term `levels` deep; the codec accepts up to 1,000 levels.
  defp deep(levels \\ 1000), do: Enum.reduce(1..(levels - 1), {:bottom}, &[&2 | &1])

  test "the normal and dirty variants agree" do
    for term <- [%{"a" => [1, 2.5, nil]}, {:ok, self()}, deep(), :crypto.strong_rand_bytes(100)] do
      assert {:ok, json} = Native.term_to_json(term)
      assert Native.term_to_json_dirty(term) == {:ok, json}
      assert Native.json_to_term(json, :existing) === {:ok, term}
      assert Native.json_to_term_dirty(json, :existing) === {:ok, term}
      assert Native.json_to_term_dirty(json, :create) === {:ok, term}
    end
  end

  test "the deepest terms convert on dirty schedulers, whose stacks are small" do
    big = :crypto.strong_rand_bytes(1_000_000)
    term = {big, deep(999)}
    assert {:ok, json} = Native.term_to_json_dirty(term)
    assert Native.json_to_term_dirty(json, :existing) === {:ok, term}
    assert {:error, {:too_deep, _}} = Native.term_to_json_dirty({big, deep()})
  end

  test "errors are {:error, {kind, message}}" do
    assert {:error, {:invalid_json, message}} = Native.json_to_term_dirty("[", :create)
    assert is_binary(message)
  end

  test "arguments of the wrong type raise badarg" do
    assert_raise ArgumentError, fn -> Native.json_to_term("1", :all) end
    assert_raise ArgumentError, fn -> Native.json_to_term(~c"1", :create) end
    assert_raise ArgumentError, fn -> Native.json_to_term_dirty(1, :existing) end
  end

  test "hostile JSON never crashes the VM" do
    :rand.seed(:exsss, {ExUnit.configuration()[:seed], 3, 5})

    pieces = [
      "[",
      "]",
      "{",
      "}",
      ",",
      ":",
      "\"$atom\"",
      "\"$tail\"",
      "\"$map\"",
      "1",
      "-0",
      "1e999",
      "\"\\u",
      "null",
      " "
    ]

    for _ <- 1..20_000 do
      json = Enum.map_join(1..:rand.uniform(30), fn _ -> Enum.random(pieces) end)
      assert {_, _} = Native.json_to_term(json, :existing)
    end
  end
end
