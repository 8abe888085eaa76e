defmodule ErlangCnode.Test.Wait do
  @moduledoc false
  import ExUnit.Assertions, only: [flunk: 1]

  @doc "Polls `check` every `interval` ms, 200 times at most; fails loudly then."
  def until(check, interval, tries \\ 200) do
    cond do
      check.() -> :ok
      tries == 0 -> flunk("condition not reached")
      true -> Process.sleep(interval) && until(check, interval, tries - 1)
    end
  end
end
