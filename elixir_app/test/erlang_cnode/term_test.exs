defmodule ErlangCnode.TermTest do
  # Not async: the atom-table tests count atoms.
  use ExUnit.Case, async: false
  import Bitwise

  alias ErlangCnode.Term

  doctest ErlangCnode.Term

  # Terms on other nodes, made the way they arrive from the wire.
  defp pid(node, id, serial, creation),
    do:
      :erlang.binary_to_term(
        <<131, 88>> <> atom_ext(node) <> <<id::32, serial::32, creation::32>>
      )

  defp port(node, id, creation),
    do: :erlang.binary_to_term(<<131, 120>> <> atom_ext(node) <> <<id::64, creation::32>>)

  defp reference(node, creation, words) do
    ids = for word <- words, into: <<>>, do: <<word::32>>

    :erlang.binary_to_term(
      <<131, 90, length(words)::16>> <> atom_ext(node) <> <<creation::32>> <> ids
    )
  end

  defp atom_ext(name), do: <<119, byte_size(name)>> <> name

  # A name no atom has: the string is made at run time, never as an atom.
  defp fresh_name,
    do: "never_made_#{System.unique_integer([:positive])}_#{:rand.uniform(1 <<< 40)}"

  defp kind({:error, {kind, message}}) when is_atom(kind) and is_binary(message), do: kind

  describe "plain JSON (docs/term-mapping.md)" do
    # {term, JSON as written, other JSON spellings of the same term}
    @rows [
      {%{"a" => 1}, ~s({"a":1}), [~s({"a": 1}), ~s( { "a" : 1 } )]},
      {%{"b" => 1, "a" => 2}, ~s({"a":2,"b":1}), [~s({"b": 1, "a": 2})]},
      {[1, 2], "[1,2]", ["[1, 2]"]},
      {[[1], [[]]], "[[1],[[]]]", []},
      {"text", ~s("text"), [~s("t\\u0065xt")]},
      {42, "42", []},
      {-7, "-7", []},
      {123_456_789_012_345_678_901_234_567_890, "123456789012345678901234567890", []},
      {2.5, "2.5", ["25e-1"]},
      {7.0, "7.0", ["7.00"]},
      {1000.0, "1000.0", ["1e3", "1E+3"]},
      {true, "true", []},
      {false, "false", []},
      {nil, "null", []}
    ]

    for {term, json, spellings} <- @rows do
      test "#{json}" do
        term = unquote(Macro.escape(term))
        assert Term.to_json(term) == {:ok, unquote(json)}
        assert Term.from_json(unquote(json)) === {:ok, term}

        for spelling <- unquote(spellings) do
          assert Term.from_json(spelling) === {:ok, term}, spelling
        end
      end
    end

    test "plain JSON comes back unchanged" do
      json = ~s({"list":[1,-2.5,"x",null,true,{"nested":[]}],"n":12345678901234567890123})
      assert json |> Term.from_json!() |> Term.to_json!() == json
    end
  end

  describe "tagged forms (docs/term-mapping.md)" do
    test "atoms" do
      assert_row(:ok, ~s({"$atom":"ok"}))
      assert_row(:ünï, ~s({"$atom":"ünï"}))
      assert_row(:日本語, ~s({"$atom":"日本語"}))
      assert_row(:"a\0b", ~s({"$atom":{"$binary":"YQBi"}}))
      assert_row(:"", ~s({"$atom":""}))
      assert_row([true, false, nil], "[true,false,null]")
    end

    test "tuples" do
      assert_row({:ok, 1}, ~s({"$tuple":[{"$atom":"ok"},1]}))
      assert_row({}, ~s({"$tuple":[]}))
    end

    test "binaries and bitstrings" do
      assert_row("héllo", ~s("héllo"))
      assert_row(<<255, 0>>, ~s({"$binary":"/wA="}))
      assert_row(<<"a", 0, "b">>, ~s({"$binary":"YQBi"}))
      assert_row(<<5::3>>, ~s({"$bitstring":{"base64":"oA==","bits":3}}))
    end

    test "maps" do
      assert_row(%{"a" => 1}, ~s({"a":1}))
      assert_row(%{a: 1}, ~s({"$map":[[{"$atom":"a"},1]]}))
      assert_row(%{"$atom" => 1}, ~s({"$map":[["$atom",1]]}))
      assert_row(%{1 => :x, {2} => [3]}, ~s({"$map":[[1,{"$atom":"x"}],[{"$tuple":[2]},[3]]]}))
      assert_row(%{<<255>> => 1}, ~s({"$map":[[{"$binary":"/w=="},1]]}))
    end

    test "lists" do
      assert_row([1, [2]], "[1,[2]]")
      assert_row(~c"abc", "[97,98,99]")
      assert_row([1, 2 | 3], ~s([1,2,{"$tail":3}]))
      assert_row([1 | "t"], ~s([1,{"$tail":"t"}]))
    end

    test "floats never use an exponent" do
      assert_row(7.0, "7.0")
      assert_row(1.0e300, "1" <> String.duplicate("0", 300) <> ".0")
      assert_row(5.0e-324, "0." <> String.duplicate("0", 323) <> "5")
      assert_row(-0.1, "-0.1")
    end

    test "integers of any size" do
      assert_row(1 <<< 70, "1180591620717411303424")
      assert_row(-(1 <<< 64), "-18446744073709551616")
    end

    test "pids, ports and references" do
      assert_row(
        pid("a@host", 83, 0, 1_700_000_000),
        ~s({"$pid":{"node":"a@host","id":83,"serial":0,"creation":1700000000}})
      )

      assert_row(port("a@host", 5, 1), ~s({"$port":{"node":"a@host","id":5,"creation":1}}))

      assert_row(
        reference("a@host", 1, [1, 2, 3]),
        ~s({"$reference":{"node":"a@host","creation":1,"id":[1,2,3]}})
      )

      for local <- [self(), make_ref(), hd(Port.list())] do
        assert local |> Term.to_json!() |> Term.from_json!() === local
      end
    end

    test "field order inside tagged objects does not matter" do
      assert Term.from_json!(
               ~s({"$pid": {"creation": 1700000000, "serial": 0, "id": 83, "node": "a@host"}}),
               atoms: :create
             ) === pid("a@host", 83, 0, 1_700_000_000)
    end

    test "external funs" do
      assert_row(&:lists.map/2, ~s({"$fun":{"module":"lists","function":"map","arity":2}}))

      assert_row(
        &Enum.map/2,
        ~s({"$fun":{"module":"Elixir.Enum","function":"map","arity":2}})
      )
    end

    test "closures come back as the same fun" do
      captured = {:captured, [1, 2]}
      closure = fn x -> {x, captured} end
      assert {:ok, ~s({"$closure":) <> _} = Term.to_json(closure)
      back = closure |> Term.to_json!() |> Term.from_json!()
      assert back === closure
      assert back.(1) == {1, captured}
    end
  end

  describe "atoms: :existing (the default)" do
    test "an unknown atom is an error and creates no atom" do
      name = fresh_name()
      json = ~s({"$tuple": [{"$atom": "ok"}, {"$atom": "#{name}"}]})
      # Once first, so that code loading does not count.
      assert kind(Term.from_json(json)) == :unknown_atom

      before = :erlang.system_info(:atom_count)
      result = Term.from_json(json)
      result_existing = Term.from_json(json, atoms: :existing)
      assert :erlang.system_info(:atom_count) == before

      assert {:error, {:unknown_atom, message}} = result
      assert {:error, {:unknown_atom, _}} = result_existing
      assert message =~ name
      assert_raise ArgumentError, fn -> String.to_existing_atom(name) end

      assert {:ok, {:ok, atom}} = Term.from_json(json, atoms: :create)
      assert atom === String.to_existing_atom(name)
      assert Term.from_json(json) === {:ok, {:ok, String.to_existing_atom(name)}}
    end

    test "no atom is made inside pids, ports, references and funs either" do
      for template <- [
            ~s({"$pid": {"node": "NAME@host", "id": 1, "serial": 0, "creation": 1}}),
            ~s({"$port": {"node": "NAME@host", "id": 1, "creation": 1}}),
            ~s({"$reference": {"node": "NAME@host", "creation": 1, "id": [1, 2, 3]}}),
            ~s({"$fun": {"module": "NAME", "function": "map", "arity": 2}}),
            ~s({"$fun": {"module": "lists", "function": "NAME", "arity": 2}}),
            ~s({"$map": [[{"$atom": "NAME"}, 1]]}),
            ~s([1, {"$tail": {"$atom": "NAME"}}])
          ] do
        name = fresh_name()
        json = String.replace(template, "NAME", name)
        assert kind(Term.from_json(json)) == :unknown_atom
        before = :erlang.system_info(:atom_count)
        result = Term.from_json(json)
        assert :erlang.system_info(:atom_count) == before, json
        assert kind(result) == :unknown_atom, json
        assert {:ok, _} = Term.from_json(json, atoms: :create)
      end
    end

    test "a closure's module and node are atoms too" do
      json = Term.to_json!(fn -> :ok end)
      assert {:ok, _} = Term.from_json(json)
      module = ~s("module":"#{inspect(__MODULE__) |> then(&("Elixir." <> &1))}")
      node = ~s("node":"#{node()}")
      assert json =~ module and json =~ node

      for {from, to} <- [
            {module, ~s("module":"#{fresh_name()}")},
            {node, ~s("node":"#{fresh_name()}@h")}
          ] do
        changed = String.replace(json, from, to)
        before = :erlang.system_info(:atom_count)
        result = Term.from_json(changed)
        assert :erlang.system_info(:atom_count) == before
        assert kind(result) == :unknown_atom, changed
      end
    end

    test "an external fun that is not loaded is refused, as safe decoding refuses it" do
      json = ~s({"$fun": {"module": "lists", "function": "map", "arity": 7}})
      assert {:error, {:unknown_fun, _}} = Term.from_json(json)
      assert {:ok, fun} = Term.from_json(json, atoms: :create)
      assert Function.info(fun, :arity) == {:arity, 7}
    end

    test "bad options" do
      assert_raise ArgumentError, fn -> Term.from_json("1", atoms: :all) end
      assert_raise ArgumentError, fn -> Term.from_json("1", atom: :create) end
      assert_raise FunctionClauseError, fn -> Term.from_json(~c"1") end
    end
  end

  describe "errors have typed kinds" do
    test "JSON that is not JSON" do
      for json <- [
            "",
            "[1,",
            "{",
            "nul",
            "[1] 2",
            "{\"a\" 1}",
            <<"\"", 255, "\"">>,
            ~s("a\\u0000b")
          ] do
        assert kind(Term.from_json(json)) == :invalid_json, inspect(json)
      end
    end

    test "bad tagged forms" do
      for json <- [
            ~s({"$tuple": 1}),
            ~s({"$atom": 1}),
            ~s({"$binary": "not base64!"}),
            ~s({"$bitstring": {"base64": "oA==", "bits": 9}}),
            ~s({"$pid": {"node": "a@host", "id": 1}}),
            ~s({"$pid": {"node": "a@host", "id": 1, "serial": 0, "creation": 1, "x": 2}}),
            ~s([{"$tail": 1}]),
            ~s([1, {"$tail": 2}, 3]),
            ~s([1, {"$tail": [2]}]),
            ~s({"$tail": 1})
          ] do
        assert kind(Term.from_json(json, atoms: :create)) == :invalid_tag, json
      end
    end

    test "other kinds" do
      long = String.duplicate("a", 256)
      assert kind(Term.from_json(~s({"a": 1, "a": 2}))) == :duplicate_key
      assert kind(Term.from_json(~s({"$map": [[1, 2], [1, 3]]}))) == :duplicate_key
      assert kind(Term.from_json(~s({"$atom": "#{long}"}), atoms: :create)) == :atom_too_long
      assert kind(Term.from_json("1e400")) == :non_finite_float
      assert kind(Term.from_json(String.duplicate("9", 131_073))) == :integer_too_large
      assert {:ok, _} = Term.from_json(String.duplicate("9", 131_072))
      assert kind(Term.to_json(1 <<< 440_000)) == :integer_too_large
    end

    test "nesting deeper than 1,000 levels" do
      # Every list but [] is a level: 1,001 brackets are 1,000 levels.
      assert {:ok, _} = Term.from_json(String.duplicate("[", 1001) <> String.duplicate("]", 1001))
      too_deep = String.duplicate("[", 1002) <> String.duplicate("]", 1002)
      assert kind(Term.from_json(too_deep)) == :too_deep
      assert {:ok, _} = Term.to_json(Enum.reduce(1..1000, [], &[&2 | &1]))
      assert kind(Term.to_json(Enum.reduce(1..1001, [], &[&2 | &1]))) == :too_deep
    end

    test "the ! variants raise ErlangCnode.Error with the kind" do
      error = assert_raise ErlangCnode.Error, fn -> Term.from_json!("[1,") end
      assert error.kind == :invalid_json
      assert Exception.message(error) =~ "invalid_json: "

      error =
        assert_raise ErlangCnode.Error, fn ->
          Term.to_json!(Enum.reduce(1..1001, [], &[&2 | &1]))
        end

      assert error.kind == :too_deep
    end
  end

  describe "large inputs (dirty schedulers)" do
    test "a 5 MB binary" do
      bytes = :crypto.strong_rand_bytes(5_000_000)
      assert bytes |> Term.to_json!() |> Term.from_json!() === bytes
      text = String.duplicate("héllo wörld ", 420_000)
      json = Term.to_json!(text)
      assert byte_size(json) > 5_000_000
      assert Term.from_json!(json) === text
    end

    test "a list of 100,000 elements" do
      list = Enum.map(1..100_000, &{&1, -&1 / 3, Integer.to_string(&1)})
      assert list |> Term.to_json!() |> Term.from_json!() === list
      map = Map.new(1..100_000, &{Integer.to_string(&1), &1})
      assert map |> Term.to_json!() |> Term.from_json!() === map
    end
  end

  describe "round trip of random terms" do
    test "from_json!(to_json!(t), atoms: :create) === t" do
      seed = ExUnit.configuration()[:seed]
      :rand.seed(:exsss, {seed, 17, 29})

      for i <- 1..3000 do
        term = ErlangCnode.TermTest.Random.term(4)

        assert {:ok, json} = Term.to_json(term),
               "seed #{seed}, term #{i}: #{inspect(term, limit: :infinity)}"

        assert Term.from_json!(json, atoms: :create) === term,
               "seed #{seed}, term #{i}: #{inspect(term, limit: :infinity)}\n#{json}"
      end
    end
  end

  defp assert_row(term, json) do
    assert Term.to_json(term) == {:ok, json}
    assert Term.from_json(json, atoms: :create) === {:ok, term}
  end
end

defmodule ErlangCnode.TermTest.Random do
  @moduledoc false
  # Random terms of every kind a node can send, from the :rand state of the
  # calling process (seed it first); depth is bounded.
  import Bitwise

  def term(0), do: leaf()

  def term(depth) do
    case :rand.uniform(14) do
      1 -> List.to_tuple(list(depth))
      2 -> list(depth)
      3 -> Map.new(list(depth), &{Enum.random(["a", "b", "", "héllo", "$atom", "$tail"]), &1})
      4 -> Map.new(list(depth), &{term(depth - 1), &1})
      5 -> [term(depth - 1) | list(depth)] ++ not_a_list()
      6 -> closure(list(depth))
      _ -> leaf()
    end
  end

  defp list(depth), do: for(_ <- 1..:rand.uniform(5)//1, do: term(depth - 1)) |> Enum.drop(1)

  defp not_a_list do
    case leaf() do
      tail when is_list(tail) -> :tail
      tail -> tail
    end
  end

  defp closure(captured) do
    case :rand.uniform(3) do
      1 -> fn -> captured end
      2 -> fn x -> [x | captured] end
      3 -> &:lists.reverse(captured, &1)
    end
  end

  defp leaf do
    case :rand.uniform(20) do
      1 ->
        :rand.uniform(2000) - 1000

      2 ->
        (:rand.uniform(1 <<< 62) - (1 <<< 61)) * (1 <<< :rand.uniform(300))

      3 ->
        Enum.random([1 <<< 63, -(1 <<< 63), (1 <<< 63) - 1, -(1 <<< 63) - 1, 1 <<< 64])

      4 ->
        float()

      5 ->
        Enum.random([0.0, 1.0e300, -1.0e300, 5.0e-324, 2.2250738585072014e-308, 7.0, 0.1])

      6 ->
        Enum.random(["", "text", "héllo wörld", "日本語", "quote \" \\ \n \t \u2028", "$atom"])

      7 ->
        :crypto.strong_rand_bytes(:rand.uniform(12) - 1)

      8 ->
        <<:rand.uniform(1 <<< 20)::size(:rand.uniform(40))>>

      9 ->
        atom()

      10 ->
        Enum.random([self(), spawn(fn -> :ok end), pid(:rand.uniform(32767), :rand.uniform(8191))])

      11 ->
        Enum.random([make_ref(), reference()])

      12 ->
        Enum.random([hd(Port.list()), port()])

      13 ->
        Enum.random([&:lists.map/2, &Enum.map/2, &:erlang.node/0])

      14 ->
        Enum.random([[], {}, %{}, ~c"charlist", [0, 255, 256]])

      15 ->
        :rand.uniform(1 <<< 32) - 1

      _ ->
        Enum.random([true, false, nil, :ok])
    end
  end

  # Any finite double, subnormals included.
  defp float do
    case <<:rand.uniform(1 <<< 64) - 1::64>> do
      <<value::float-64>> -> value
      _not_finite -> 1.5
    end
  end

  defp atom do
    Enum.random([
      :ok,
      :"with space",
      :ünï,
      :日本,
      :"a\0b",
      :"",
      :"$atom",
      :"Elixir.Enum",
      String.to_atom(String.duplicate("x", 255)),
      String.to_atom("random_#{:rand.uniform(1000)}")
    ])
  end

  defp node_name, do: Enum.random(["a@host", "b@other.example", "ünï@høst", "x@y"])

  defp pid(id, serial) do
    node = node_name()

    <<131, 88, 119, byte_size(node), node::binary, id::32, serial::32,
      :rand.uniform(1 <<< 32) - 1::32>>
    |> :erlang.binary_to_term()
  end

  defp port do
    node = node_name()

    <<131, 120, 119, byte_size(node), node::binary, :rand.uniform(1 <<< 40)::64,
      :rand.uniform(1000)::32>>
    |> :erlang.binary_to_term()
  end

  defp reference do
    node = node_name()
    words = :rand.uniform(3)
    ids = for _ <- 1..words, into: <<>>, do: <<:rand.uniform(1 <<< 32) - 1::32>>

    <<131, 90, words::16, 119, byte_size(node), node::binary, :rand.uniform(1 <<< 32) - 1::32>>
    |> Kernel.<>(ids)
    |> :erlang.binary_to_term()
  end
end
