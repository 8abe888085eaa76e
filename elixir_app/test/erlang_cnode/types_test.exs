defmodule ErlangCnode.TypesTest do
  # Not async: it counts atoms, which compiling code elsewhere would make.
  use ExUnit.Case, async: false
  alias ErlangCnode.Types
  doctest ErlangCnode.Types

  test "scalars are checked, floats accept integers" do
    assert Types.check(:integer, 3, "a") == {:ok, 3}
    assert Types.check(:float, 3, "a") == {:ok, 3.0}
    assert Types.check(:number, 2.5, "a") == {:ok, 2.5}
    assert Types.check(:boolean, false, "a") == {:ok, false}
    assert Types.check(:string, "é", "a") == {:ok, "é"}
    assert Types.check(:any, %{"x" => [1]}, "a") == {:ok, %{"x" => [1]}}
    assert {:error, "a: expected integer, got 2.5"} = Types.check(:integer, 2.5, "a")
    assert {:error, "a: expected boolean, got null"} = Types.check(:boolean, nil, "a")
    assert {:error, "a: expected string (UTF-8), got " <> _} = Types.check(:string, <<255>>, "a")
  end

  test "atoms come only from the listed names" do
    count = :erlang.system_info(:atom_count)
    assert Types.check({:atom, [:low, :high]}, "high", "a") == {:ok, :high}

    assert {:error, ~s(a: expected one of "low", "high", got "no_such_atom_xyz")} =
             Types.check({:atom, [:low, :high]}, "no_such_atom_xyz", "a")

    assert :erlang.system_info(:atom_count) == count
  end

  test "maps: missing, optional and unexpected fields, nested paths" do
    type = {:map, [id: :integer, name: {:optional, :string}, tags: {:list, :string}]}

    assert Types.check(type, %{"id" => 1, "tags" => []}, "args") ==
             {:ok, %{id: 1, name: nil, tags: []}}

    assert Types.check(type, %{"tags" => []}, "args") == {:error, "args.id: missing"}

    assert Types.check(type, %{"id" => 1, "tags" => [], "x" => 1}, "args") ==
             {:error, "args.x: unexpected field"}

    assert Types.check(type, %{"id" => 1, "tags" => ["a", 2]}, "args") ==
             {:error, "args.tags[1]: expected string, got 2"}

    assert Types.check(type, [], "args") == {:error, "args: expected object, got []"}
  end

  test "numbers out of float range and improper lists are errors, not crashes" do
    assert {:error, "a: expected float (this number is out of range), got 1" <> _} =
             Types.check(:float, Integer.pow(10, 400), "a")

    assert {:error, "a: expected list, got " <> _} = Types.check({:list, :integer}, [1 | 2], "a")
  end

  test "results are encoded as the plain JSON their type promises" do
    type = {:map, [level: {:atom, [:low]}, ratio: :float, tags: {:list, {:optional, :string}}]}

    assert Types.encode(type, %{level: :low, ratio: 2, tags: [nil, "x"]}) ==
             %{"level" => "low", "ratio" => 2.0, "tags" => [nil, "x"]}
  end

  test "types become JSON-ready data for erlang_services()" do
    type = {:map, [id: :integer, tags: {:list, {:atom, [:a]}}, note: {:optional, :string}]}

    assert Types.to_data(type) == %{
             "map" => %{
               "id" => "integer",
               "tags" => %{"list" => %{"atom" => ["a"]}},
               "note" => %{"optional" => "string"}
             }
           }
  end
end
