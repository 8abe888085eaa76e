defmodule ErlangCnode.Term do
  @moduledoc """
  Erlang terms as JSON and back, with the mapping PostgreSQL uses.

  The mapping is written down in `docs/term-mapping.md` and implemented once,
  in the `erlang_cnode_codec` crate, which both this module (through the
  `ErlangCnode.Native` NIF) and the PostgreSQL extension use: a term gives
  the very JSON text here that the extension writes for it before PostgreSQL
  stores it as `jsonb` (which then spaces and orders keys its own way), and
  JSON that PostgreSQL passes as an argument reads back as the same term here.

  Plain JSON maps to the terms an Elixir developer expects: objects to maps
  with binary keys, arrays to lists, strings to binaries, `null` to `nil`.
  Every other term has a tagged form, such as `{"$atom": "ok"}` or
  `{"$tuple": [...]}`, so any term survives the round trip:

      iex> {:ok, json} = ErlangCnode.Term.to_json({:ok, [1, 2 | 3]})
      iex> json
      ~s({"$tuple":[{"$atom":"ok"},[1,2,{"$tail":3}]]})
      iex> ErlangCnode.Term.from_json(json)
      {:ok, {:ok, [1, 2 | 3]}}

  Failures are `{:error, {kind, message}}`: `kind` is a stable atom
  (`:invalid_json`, `:unknown_atom`, `:too_deep`, …) and `message` is for
  people. The `!` variants raise `ErlangCnode.Error` instead.

  Large inputs (over 8 KiB of external term format or of JSON) are
  converted on a dirty CPU scheduler, so they do not hold up a normal one.
  """

  alias ErlangCnode.{Error, Native}

  # Larger inputs go to the dirty variants. 8 KiB of ordinary terms takes
  # well under the millisecond a normal scheduler may spend; big integers
  # cost far more per byte (a 41 KB one took 12.8 ms to write as JSON).
  @dirty_threshold 8 * 1024

  @typedoc "Why a conversion failed: a stable kind and a message for people."
  @type reason :: {kind :: atom, message :: String.t()}

  @typedoc "Options of `from_json/2`."
  @type from_json_option :: {:atoms, :existing | :create}

  @doc """
  The JSON text of a term.

  Fails only for a term nested more than 1,000 levels deep (`:too_deep`)
  or an integer with more than 131,072 digits (`:integer_too_large`).

      iex> ErlangCnode.Term.to_json(%{"a" => [1, 2.5, nil]})
      {:ok, ~s({"a":[1,2.5,null]})}
      iex> ErlangCnode.Term.to_json(%{a: 1})
      {:ok, ~s({"$map":[[{"$atom":"a"},1]]})}
      iex> ErlangCnode.Term.to_json(<<255, 0>>)
      {:ok, ~s({"$binary":"/wA="})}
  """
  @spec to_json(term) :: {:ok, binary} | {:error, reason}
  def to_json(term) do
    if :erlang.external_size(term) > @dirty_threshold,
      do: Native.term_to_json_dirty(term),
      else: Native.term_to_json(term)
  end

  @doc """
  Like `to_json/1`, but returns the JSON text or raises `ErlangCnode.Error`.

      iex> ErlangCnode.Term.to_json!({:error, "text"})
      ~s({"$tuple":[{"$atom":"error"},"text"]})
  """
  @spec to_json!(term) :: binary
  def to_json!(term), do: term |> to_json() |> Error.unwrap!()

  @doc """
  The term a JSON text stands for.

  ## Options

    * `:atoms` - `:existing` (the default) accepts only atoms the VM already
      has: JSON naming any other atom, also as the node of a pid, reference
      or port or in a fun, fails with `:unknown_atom` and creates nothing,
      and an external fun of a function that is not loaded fails with
      `:unknown_fun`, so untrusted JSON cannot fill the atom table.
      `:create` creates atoms (and funs) as needed; use it only for JSON
      you trust.

  ## Examples

      iex> ErlangCnode.Term.from_json(~s({"a": [1, 2.5, null]}))
      {:ok, %{"a" => [1, 2.5, nil]}}
      iex> ErlangCnode.Term.from_json(~s({"$tuple": [{"$atom": "ok"}, 7.0]}))
      {:ok, {:ok, 7.0}}
      iex> {:error, {kind, _message}} =
      ...>   ErlangCnode.Term.from_json(~s({"$atom": "not_an_atom_yet_7f3a"}))
      iex> kind
      :unknown_atom
      iex> {:error, {kind, _message}} = ErlangCnode.Term.from_json(~s({"a": 1, "a": 2}))
      iex> kind
      :duplicate_key
  """
  @spec from_json(binary, [from_json_option]) :: {:ok, term} | {:error, reason}
  def from_json(json, opts \\ []) when is_binary(json) and is_list(opts) do
    atoms = atoms_option(opts)

    if byte_size(json) > @dirty_threshold,
      do: Native.json_to_term_dirty(json, atoms),
      else: Native.json_to_term(json, atoms)
  end

  @doc """
  Like `from_json/2`, but returns the term or raises `ErlangCnode.Error`.

      iex> ErlangCnode.Term.from_json!(~s({"$atom": "ok"}))
      :ok
      iex> ErlangCnode.Term.from_json!(~s({"$atom": "made_by_json_5c1e"}), atoms: :create)
      :made_by_json_5c1e
  """
  @spec from_json!(binary, [from_json_option]) :: term
  def from_json!(json, opts \\ []), do: json |> from_json(opts) |> Error.unwrap!()

  defp atoms_option(opts) do
    case Keyword.validate!(opts, atoms: :existing)[:atoms] do
      atoms when atoms in [:existing, :create] ->
        atoms

      other ->
        raise ArgumentError,
              "expected the :atoms option to be :existing or :create, got: #{inspect(other)}"
    end
  end
end
