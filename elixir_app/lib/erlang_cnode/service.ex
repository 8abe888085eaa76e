defmodule ErlangCnode.Service do
  @moduledoc """
  Declares which functions of a module SQL may call, with their argument
  and return types.

      defmodule MyApp.Billing do
        use ErlangCnode.Service, name: "billing"

        @doc "The total of an invoice, in cents."
        defcall total(invoice :: map(%{lines: list(map(%{cents: integer, qty: integer}))})) :: integer do
          Enum.sum(for line <- invoice.lines, do: line.cents * line.qty)
        end
      end

  From SQL, arguments are named, as a JSON object:

      SELECT erlang_service_call('app@web1', 'billing', 'total',
                                 '{"invoice": {"lines": [{"cents": 250, "qty": 2}]}}');

  Each `defcall` defines an ordinary function (`MyApp.Billing.total/1`) and
  records its signature; `ErlangCnode.Dispatcher` checks and converts the
  arguments before the function runs (see `ErlangCnode.Types` for the
  types), and `ErlangCnode.Registry` lists the service once registered:
  `ErlangCnode.Registry.register(MyApp.Billing)`, or in the application
  environment, `config :erlang_cnode, services: [MyApp.Billing]`.
  """

  @typedoc "A callable function's signature."
  @type signature :: %{
          name: atom,
          args: [{atom, ErlangCnode.Types.t()}],
          returns: ErlangCnode.Types.t()
        }

  @doc "The service's name and its callable functions."
  @callback __erlang_cnode_service__() :: %{name: String.t(), calls: [signature]}

  defmacro __using__(opts) do
    name = Keyword.fetch!(opts, :name)

    unless is_binary(name) and name != "" do
      raise ArgumentError, "use ErlangCnode.Service needs name: \"a non-empty string\""
    end

    quote do
      @behaviour ErlangCnode.Service
      import ErlangCnode.Service, only: [defcall: 2]
      Module.register_attribute(__MODULE__, :erlang_cnode_calls, accumulate: true)
      @erlang_cnode_service unquote(name)
      @before_compile ErlangCnode.Service
    end
  end

  @doc """
  Defines a function SQL may call: `defcall name(arg :: type, …) :: type do … end`.
  """
  defmacro defcall(head, blocks) do
    body =
      case blocks do
        [do: body] -> body
        _ -> raise ArgumentError, "defcall takes a do block only (no rescue, after or else)"
      end

    {call, returns} =
      case head do
        {:when, _, _} ->
          raise ArgumentError,
                "defcall does not take guards: the declared types are checked instead"

        {:"::", _, [call, returns]} ->
          {call, returns}

        _ ->
          raise ArgumentError, "defcall needs a return type: defcall f(x :: integer) :: integer"
      end

    {name, args} =
      case call do
        {name, _, args} when is_atom(name) and is_list(args) ->
          {name, args}

        {name, _, context} when is_atom(name) and is_atom(context) ->
          {name, []}

        other ->
          raise ArgumentError,
                "defcall needs a plain function name, got: #{Macro.to_string(other)}"
      end

    typed = Enum.map(args, &typed_arg/1)

    case Enum.find(typed, fn {var, _, _} -> Enum.count(typed, &(elem(&1, 0) == var)) > 1 end) do
      nil -> :ok
      {var, _, _} -> raise ArgumentError, "defcall #{name}: argument #{var} is declared twice"
    end

    signature = %{
      name: name,
      args: for({var, _, type} <- typed, do: {var, type}),
      returns: ErlangCnode.Types.from_quoted(returns)
    }

    vars = for {_, ast, _} <- typed, do: ast

    quote do
      @erlang_cnode_calls unquote(Macro.escape(signature))
      def unquote(name)(unquote_splicing(vars)), do: unquote(body)
    end
  end

  defp typed_arg({:"::", _, [{var, _, context} = ast, type]})
       when is_atom(var) and is_atom(context) do
    if String.starts_with?(Atom.to_string(var), "_") do
      raise ArgumentError,
            "defcall argument #{var}: SQL passes arguments by name, so names cannot start with _"
    end

    {var, ast, ErlangCnode.Types.from_quoted(type)}
  end

  defp typed_arg(other) do
    raise ArgumentError, "defcall arguments are `name :: type`, got: #{Macro.to_string(other)}"
  end

  defmacro __before_compile__(env) do
    names = env.module |> Module.get_attribute(:erlang_cnode_calls) |> Enum.map(& &1.name)

    case names -- Enum.uniq(names) do
      [] ->
        :ok

      [name | _] ->
        raise ArgumentError, "#{inspect(env.module)}: defcall #{name} is defined more than once"
    end

    quote do
      @impl ErlangCnode.Service
      def __erlang_cnode_service__ do
        %{name: @erlang_cnode_service, calls: Enum.reverse(@erlang_cnode_calls)}
      end
    end
  end
end
