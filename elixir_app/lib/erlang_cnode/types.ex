defmodule ErlangCnode.Types do
  @moduledoc """
  The argument and return types of service functions, and checking JSON
  values against them.

  Types are written in `defcall` heads (see `ErlangCnode.Service`):

  | written | accepts | becomes |
  |---|---|---|
  | `integer` | a JSON integer | integer |
  | `float` | a JSON number | float |
  | `number` | a JSON number | integer or float |
  | `string` | a JSON string | binary |
  | `boolean` | `true` or `false` | boolean |
  | `atom([:low, :high])` | one of these names, as a string | that atom (no other atom is ever made) |
  | `list(t)` | an array of `t` | list |
  | `map(%{id: integer, name: optional(string)})` | an object with these fields | map with atom keys |
  | `optional(t)` | `t` or `null` (a missing field) | `t` or `nil` |
  | `any` | anything | as it came |

  A failed check names the path and the problem:

      iex> ErlangCnode.Types.check({:map, [id: :integer]}, %{"id" => "x"}, "args.user")
      {:error, ~s(args.user.id: expected integer, got "x")}
  """

  @typedoc "A type, as `defcall` records it."
  @type t ::
          :integer
          | :float
          | :number
          | :string
          | :boolean
          | :any
          | {:atom, [atom]}
          | {:list, t}
          | {:map, [{atom, t}]}
          | {:optional, t}

  @doc false
  # Turns the quoted type of a `defcall` head into a `t()`; raises
  # ArgumentError on anything else. Runs at compile time.
  def from_quoted({name, _, context})
      when name in [:integer, :float, :number, :string, :boolean, :any] and
             (is_atom(context) or context == []),
      do: name

  def from_quoted({name, _, [atoms]}) when name in [:atom, :one_of] and is_list(atoms) do
    unless atoms != [] and Enum.all?(atoms, &is_atom/1) do
      raise ArgumentError, "atom(...) takes a list of atoms, got: #{Macro.to_string(atoms)}"
    end

    {:atom, atoms}
  end

  def from_quoted({:list, _, [type]}), do: {:list, from_quoted(type)}

  def from_quoted({name, _, [type]}) when name in [:optional, :nullable],
    do: {:optional, from_quoted(type)}

  def from_quoted({:map, _, [{:%{}, _, _} = fields]}), do: from_quoted(fields)

  def from_quoted({:map, _, _} = other),
    do:
      raise(
        ArgumentError,
        "map(...) takes the fields as %{name: type}, got: #{Macro.to_string(other)}"
      )

  def from_quoted({:%{}, _, fields}) do
    unless Enum.all?(fields, fn {key, _} -> is_atom(key) end) do
      raise ArgumentError, "map fields are atoms: #{Macro.to_string({:%{}, [], fields})}"
    end

    {:map, Enum.map(fields, fn {key, type} -> {key, from_quoted(type)} end)}
  end

  def from_quoted(other) do
    raise ArgumentError,
          "unknown type #{Macro.to_string(other)}: use integer, float, number, string, boolean, " <>
            "atom([...]), list(t), map(%{field: t}), optional(t) or any"
  end

  @doc """
  Checks `value` (as JSON gives it: maps with string keys, `nil` for null)
  against `type`, converting it: `{:ok, converted}` or `{:error, message}`
  with the path from `path`.

      iex> ErlangCnode.Types.check({:list, {:atom, [:low, :high]}}, ["low", "high"], "args.levels")
      {:ok, [:low, :high]}
      iex> ErlangCnode.Types.check({:list, :integer}, [1, 2.5], "args.ns")
      {:error, "args.ns[1]: expected integer, got 2.5"}
  """
  @spec check(t, term, String.t()) :: {:ok, term} | {:error, String.t()}
  def check(type, value, path)

  def check(:any, value, _path), do: {:ok, value}
  def check({:optional, _type}, nil, _path), do: {:ok, nil}
  def check({:optional, type}, value, path), do: check(type, value, path)
  def check(:integer, value, _path) when is_integer(value), do: {:ok, value}
  def check(:float, value, _path) when is_float(value), do: {:ok, value}

  def check(:float, value, path) when is_integer(value) do
    case to_float(value) do
      {:ok, float} -> {:ok, float}
      :error -> problem(path, "expected float (this number is out of range)", value)
    end
  end

  def check(:number, value, _path) when is_number(value), do: {:ok, value}
  def check(:boolean, value, _path) when is_boolean(value), do: {:ok, value}

  def check(:string, value, path) when is_binary(value) do
    if String.valid?(value),
      do: {:ok, value},
      else: problem(path, "expected string (UTF-8)", value)
  end

  def check({:atom, allowed}, value, path) when is_binary(value) or is_atom(value) do
    name = if is_atom(value), do: Atom.to_string(value), else: value

    case Enum.find(allowed, &(Atom.to_string(&1) == name)) do
      nil ->
        problem(
          path,
          "expected one of #{Enum.map_join(allowed, ", ", &inspect(Atom.to_string(&1)))}",
          value
        )

      atom ->
        {:ok, atom}
    end
  end

  def check({:list, type}, value, path) when is_list(value) do
    if List.improper?(value),
      do: problem(path, "expected list", value),
      else: check_items(type, value, path)
  end

  def check({:map, fields}, value, path) when is_map(value), do: check_map(fields, value, path)

  def check(type, value, path), do: problem(path, "expected #{describe(type)}", value)

  defp check_items(type, value, path) do
    value
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, []}, fn {item, index}, {:ok, done} ->
      case check(type, item, "#{path}[#{index}]") do
        {:ok, item} -> {:cont, {:ok, [item | done]}}
        error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, done} -> {:ok, Enum.reverse(done)}
      error -> error
    end
  end

  # Objects from JSON have string keys; results from Elixir code may have
  # the field names as atoms.
  defp check_map(fields, value, path) do
    known = MapSet.new(fields, fn {key, _} -> Atom.to_string(key) end)

    case Enum.find(Map.keys(value), &(not MapSet.member?(known, key_text(&1)))) do
      nil -> check_fields(fields, value, path)
      extra -> {:error, "#{path}.#{key_text(extra)}: unexpected field"}
    end
  end

  defp check_fields(fields, value, path) do
    Enum.reduce_while(fields, {:ok, %{}}, fn {key, type}, {:ok, done} ->
      field_path = "#{path}.#{key}"

      result =
        case fetch_field(value, key) do
          {:ok, item} -> check(type, item, field_path)
          :error when elem(type, 0) == :optional -> {:ok, nil}
          :error -> {:error, "#{field_path}: missing"}
        end

      case result do
        {:ok, item} -> {:cont, {:ok, Map.put(done, key, item)}}
        error -> {:halt, error}
      end
    end)
  end

  defp to_float(integer) do
    {:ok, :erlang.float(integer)}
  rescue
    ArgumentError -> :error
  end

  defp fetch_field(map, key) do
    with :error <- Map.fetch(map, Atom.to_string(key)), do: Map.fetch(map, key)
  end

  defp key_text(key) when is_binary(key), do: key
  defp key_text(key) when is_atom(key), do: Atom.to_string(key)
  defp key_text(key), do: inspect(key)

  defp problem(path, expected, value), do: {:error, "#{path}: #{expected}, got #{shown(value)}"}

  # The value as JSON, as the SQL user wrote it; cut short if long.
  defp shown(value) do
    text =
      case ErlangCnode.Term.to_json(value) do
        {:ok, json} -> json
        {:error, _} -> inspect(value)
      end

    if String.length(text) > 60, do: String.slice(text, 0, 57) <> "...", else: text
  end

  @doc """
  A checked result in the plain JSON its type promises: maps with the
  declared fields as string keys, atoms of `atom([...])` as their names;
  `any` is left to the term mapping.

      iex> ErlangCnode.Types.encode({:map, [id: :integer, level: {:atom, [:low, :high]}]}, %{id: 7, level: :high})
      %{"id" => 7, "level" => "high"}
  """
  @spec encode(t, term) :: term
  def encode({:optional, _type}, nil), do: nil
  def encode({:optional, type}, value), do: encode(type, value)
  def encode({:atom, _}, value) when is_atom(value), do: Atom.to_string(value)
  def encode({:list, type}, value), do: Enum.map(value, &encode(type, &1))
  def encode(:float, value) when is_integer(value), do: elem(to_float(value), 1)

  def encode({:map, fields}, value) do
    Map.new(fields, fn {key, type} ->
      item =
        case fetch_field(value, key) do
          {:ok, item} -> item
          :error -> nil
        end

      {Atom.to_string(key), encode(type, item)}
    end)
  end

  def encode(_type, value), do: value

  @doc """
  A type as text, as errors show it.

      iex> ErlangCnode.Types.describe({:list, {:optional, :integer}})
      "list(optional(integer))"
  """
  @spec describe(t) :: String.t()
  def describe({:atom, atoms}),
    do: "one of #{Enum.map_join(atoms, ", ", &inspect(Atom.to_string(&1)))}"

  def describe({:list, type}), do: "list(#{describe(type)})"
  def describe({:optional, type}), do: "optional(#{describe(type)})"
  def describe({:map, _}), do: "object"
  def describe(:string), do: "string"
  def describe(name) when is_atom(name), do: Atom.to_string(name)

  @doc """
  A type as JSON-ready data, as `erlang_services()` shows it in SQL:
  `"integer"`, `%{"list" => "integer"}`, `%{"map" => %{"id" => "integer"}}`,
  `%{"optional" => "string"}`, `%{"atom" => ["low", "high"]}`.

      iex> ErlangCnode.Types.to_data({:list, {:atom, [:low, :high]}})
      %{"list" => %{"atom" => ["low", "high"]}}
  """
  @spec to_data(t) :: term
  def to_data({:atom, atoms}), do: %{"atom" => Enum.map(atoms, &Atom.to_string/1)}
  def to_data({:list, type}), do: %{"list" => to_data(type)}
  def to_data({:optional, type}), do: %{"optional" => to_data(type)}

  def to_data({:map, fields}),
    do: %{"map" => Map.new(fields, fn {k, t} -> {Atom.to_string(k), to_data(t)} end)}

  def to_data(name) when is_atom(name), do: Atom.to_string(name)
end
