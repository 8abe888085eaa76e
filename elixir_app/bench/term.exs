# How fast ErlangCnode.Term converts, through the NIF, next to
# :erlang.term_to_binary/binary_to_term of the same term (a lower bound:
# the NIF does that and the JSON on top). Run:
#
#     mix run elixir_app/bench/term.exs
#
# Each figure is the fastest of 200 runs (interleaved), in MB/s of JSON.

shapes = [
  {"1 KB map", Map.new(1..24, fn i -> {"key_#{i}", "value number #{i}"} end)},
  {"100 KB list of tuples", for(i <- 1..2600, do: {:row, i, "name-#{i}", i / 7})},
  {"1 MB binary", String.duplicate("printable text ", 70_000)}
]

time = fn fun ->
  start = System.monotonic_time(:nanosecond)
  fun.()
  System.monotonic_time(:nanosecond) - start
end

IO.puts("| input | to_json | from_json | term_to_binary | binary_to_term |")
IO.puts("|---|---|---|---|---|")

for {label, term} <- shapes do
  json = ErlangCnode.Term.to_json!(term)
  etf = :erlang.term_to_binary(term)

  runs =
    for _ <- 1..200 do
      {time.(fn -> ErlangCnode.Term.to_json!(term) end),
       time.(fn -> ErlangCnode.Term.from_json!(json, atoms: :existing) end),
       time.(fn -> :erlang.term_to_binary(term) end),
       time.(fn -> :erlang.binary_to_term(etf) end)}
    end

  best = fn i -> runs |> Enum.map(&elem(&1, i)) |> Enum.min() |> max(1) end
  # bytes per nanosecond × 1000 = MB/s
  rate = fn i -> Float.round(byte_size(json) * 1000 / best.(i), 1) end

  IO.puts("| #{label} | #{rate.(0)} | #{rate.(1)} | #{rate.(2)} | #{rate.(3)} |")
end
