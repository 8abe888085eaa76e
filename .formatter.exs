[
  inputs: ["mix.exs", "elixir_app/**/*.{ex,exs}"]
]
