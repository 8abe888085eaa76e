defmodule ErlangCnode.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    :ok = ErlangCnode.Registry.create_table()

    children = [ErlangCnode.Registry] ++ ErlangCnode.Dispatcher.child_specs()

    Supervisor.start_link(children, strategy: :one_for_one, name: ErlangCnode.Supervisor)
  end
end
