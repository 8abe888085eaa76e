defmodule ErlangCnode.Error do
  @moduledoc """
  A failure of an `ErlangCnode` call, raised by the `!` functions.

  `kind` is a stable atom to match on (`:invalid_json`, `:unknown_atom`,
  `:too_deep`, …; see `docs/term-mapping.md`); `message` explains it for
  people and may change between releases.

      iex> try do
      ...>   ErlangCnode.Term.from_json!("[1,")
      ...> rescue
      ...>   error in ErlangCnode.Error -> error.kind
      ...> end
      :invalid_json
  """

  defexception [:kind, :message]

  @type t :: %__MODULE__{kind: atom, message: String.t()}

  @impl true
  def message(%__MODULE__{kind: kind, message: message}), do: "#{kind}: #{message}"

  @doc """
  The exception for an error reason `{kind, message}`.

      iex> ErlangCnode.Error.from({:too_deep, "term is nested too deeply"})
      %ErlangCnode.Error{kind: :too_deep, message: "term is nested too deeply"}
  """
  @spec from({atom, String.t()}) :: t
  def from({kind, message}) when is_atom(kind) and is_binary(message),
    do: %__MODULE__{kind: kind, message: message}

  @doc """
  The value of `{:ok, value}`; raises the error of `{:error, {kind, message}}`.
  The one place where error tuples become exceptions.

      iex> ErlangCnode.Error.unwrap!({:ok, 1})
      1
      iex> ErlangCnode.Error.unwrap!({:error, {:too_deep, "nested too deeply"}})
      ** (ErlangCnode.Error) too_deep: nested too deeply
  """
  @spec unwrap!({:ok, value} | {:error, {atom, String.t()}}) :: value when value: term
  def unwrap!({:ok, value}), do: value
  def unwrap!({:error, reason}), do: raise(from(reason))
end
