defmodule ErlangCnode.Test.Generate do
  @moduledoc false
  import Bitwise
  # Random terms of every kind the distribution protocol carries, from a
  # seed, for cross-checks; depth is bounded.

  def terms(count, seed) do
    :rand.seed(:exsss, {seed, seed * 7 + 1, seed * 13 + 2})
    for _ <- 1..count, do: term(3)
  end

  def term(0), do: leaf()

  def term(depth) do
    case :rand.uniform(12) do
      1 -> List.to_tuple(list(depth))
      2 -> list(depth)
      3 -> Map.new(list(depth), fn v -> {leaf_key(), v} end)
      4 -> Map.new(list(depth), fn v -> {term(depth - 1), v} end)
      5 -> improper(depth)
      _ -> leaf()
    end
  end

  defp list(depth),
    do: for(_ <- 1..:rand.uniform(4), do: term(depth - 1)) |> Enum.take(:rand.uniform(4) - 1)

  defp improper(depth), do: [term(depth - 1) | leaf()]

  defp leaf_key, do: Enum.random(["a", "b", "héllo", "$atom", "", "key with spaces"])

  defp leaf do
    case :rand.uniform(16) do
      1 -> :rand.uniform(1000) - 500
      2 -> (:rand.uniform(1 <<< 30) - (1 <<< 29)) * (1 <<< 60)
      3 -> (:rand.uniform() - 0.5) * :math.pow(10, :rand.uniform(40) - 20)
      4 -> Enum.random([0.0, -0.0, 1.0e300, 5.0e-324, 7.0])
      5 -> Enum.random(["", "text", "héllo wörld", "quote \" and \\ and \n"])
      6 -> :crypto.strong_rand_bytes(:rand.uniform(8))
      7 -> <<:rand.uniform(255)::size(:rand.uniform(7))>>
      8 -> Enum.random([:ok, :error, true, false, nil, :"with space", :ünï])
      9 -> self()
      10 -> make_ref()
      11 -> &Enum.map/2
      12 -> Enum.random([[], {}, %{}])
      13 -> ~c"charlist"
      14 -> <<0, 1, 2>>
      15 -> Enum.random([1 <<< 64, -(1 <<< 64), 1 <<< 200])
      16 -> :rand.uniform(1 <<< 31)
    end
  end
end
