defmodule ErlangCnode.Test.Wait do
  @moduledoc false
  import ExUnit.Assertions, only: [flunk: 1]

  @doc """
  How many processes are inside `module.function` right now (a service's
  tasks under way), read from their stacks: unlike a count kept by a
  dispatcher, it does not lag behind processes that just ended.
  """
  def running_in(module, function) do
    Enum.count(Process.list(), fn pid ->
      case Process.info(pid, :current_stacktrace) do
        {:current_stacktrace, stack} -> Enum.any?(stack, &match?({^module, ^function, _, _}, &1))
        nil -> false
      end
    end)
  end

  @doc "Polls `check` every `interval` ms, 200 times at most; fails loudly then."
  def until(check, interval, tries \\ 200) do
    cond do
      check.() -> :ok
      tries == 0 -> flunk("condition not reached")
      true -> Process.sleep(interval) && until(check, interval, tries - 1)
    end
  end
end
