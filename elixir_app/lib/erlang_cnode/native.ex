defmodule ErlangCnode.Native do
  @moduledoc """
  The NIF functions of the `erlang_cnode_nif` crate (`native/nif`).

  Stubs only: the library replaces them when this module loads. Call
  `ErlangCnode.Term` instead, which picks the dirty variants for large
  inputs and offers raising versions. Every function answers `{:ok, value}`
  or `{:error, {kind, message}}`, `kind` being one of the codec's stable
  error kinds (see `docs/term-mapping.md`).
  """

  @on_load :load_nif

  @typedoc "A failure: a stable kind and a message for people."
  @type error :: {:error, {atom, String.t()}}

  @doc false
  def load_nif do
    case :code.priv_dir(:erlang_cnode) do
      {:error, reason} -> {:error, {:no_priv_dir, reason}}
      priv -> :erlang.load_nif(:filename.join(priv, ~c"native/erlang_cnode_nif"), 0)
    end
  end

  @doc "A term as JSON text, on a normal scheduler."
  @spec term_to_json(term) :: {:ok, binary} | error
  def term_to_json(_term), do: :erlang.nif_error(:nif_not_loaded)

  @doc "`term_to_json/1` on a dirty CPU scheduler."
  @spec term_to_json_dirty(term) :: {:ok, binary} | error
  def term_to_json_dirty(_term), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  JSON text as a term, on a normal scheduler. With `:existing` no atom is
  created; with `:create` atoms the JSON names are created as needed.
  """
  @spec json_to_term(binary, :existing | :create) :: {:ok, term} | error
  def json_to_term(_json, _atoms), do: :erlang.nif_error(:nif_not_loaded)

  @doc "`json_to_term/2` on a dirty CPU scheduler."
  @spec json_to_term_dirty(binary, :existing | :create) :: {:ok, term} | error
  def json_to_term_dirty(_json, _atoms), do: :erlang.nif_error(:nif_not_loaded)
end
