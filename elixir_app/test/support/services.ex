defmodule ErlangCnode.TestServices.Accounts do
  @moduledoc false
  use ErlangCnode.Service, name: "accounts"

  defcall find(
            user :: map(%{id: integer, name: optional(string)}),
            tags :: list(atom([:new, :vip]))
          ) :: map(%{id: integer, tags: list(atom([:new, :vip]))}) do
    %{id: user.id, tags: tags}
  end

  defcall crash(reason :: string) :: any do
    raise reason
  end

  defcall slow(ms :: integer) :: string do
    Process.sleep(ms)
    "done"
  end

  defcall wrong_result() :: integer do
    "not an integer"
  end

  defcall notify(to :: string, message :: any) :: boolean do
    # `to` names a process registered on the node running the tests.
    send(String.to_existing_atom(to), {:from_sql, message})
    true
  end

  defcall linked_worker(to :: string) :: boolean do
    # A worker linked to the call's process, that outlives the call (as
    # one started after a task would); `to` learns its pid.
    worker = spawn_link(fn -> Process.sleep(:infinity) end)
    send(String.to_existing_atom(to), {:worker, worker})
    true
  end

  defcall stops_itself() :: boolean do
    # An exit signal, not an exception: nothing in the function catches it.
    Process.exit(self(), :boom)
    true
  end

  defcall stubborn(ms :: integer) :: string do
    Process.flag(:trap_exit, true)
    Process.sleep(ms)
    "done"
  end

  defcall improper() :: list(integer) do
    [1 | 2]
  end

  defcall huge() :: float do
    Integer.pow(10, 400)
  end

  defcall ratio(x :: float, n :: number, flag :: boolean) :: float do
    if flag, do: x * n, else: x
  end
end

defmodule ErlangCnode.TestServices.Terms do
  @moduledoc false
  # Holds terms for SQL to fetch by index (the cross-check of the JSON the
  # extension and the NIF give for one term).
  def put(terms), do: :persistent_term.put(__MODULE__, List.to_tuple(terms))
  def get(index), do: elem(:persistent_term.get(__MODULE__), index)
end
