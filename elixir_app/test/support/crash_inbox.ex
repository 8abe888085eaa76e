defmodule ErlangCnode.Test.CrashInbox do
  @moduledoc false
  # The receiver of the crash test, run on a node of its own that the test
  # kills: two inboxes whose handler appends each id it handles to
  # <dir>/<name>.handled (one write(2) each, so a kill loses none), the
  # record the test checks for ids handled twice, lost, or out of order.

  defmodule A do
    @moduledoc false
    use ErlangCnode.Inbox, name: :crash_inbox_a
    @impl true
    def handle_delivery(id, _message), do: ErlangCnode.Test.CrashInbox.record(name(), id)
  end

  defmodule B do
    @moduledoc false
    use ErlangCnode.Inbox, name: :crash_inbox_b
    @impl true
    def handle_delivery(id, _message), do: ErlangCnode.Test.CrashInbox.record(name(), id)
  end

  @doc "Starts both inboxes (on the node this runs on), logging under `dir`."
  def start(dir) do
    :persistent_term.put({__MODULE__, :dir}, dir)
    {:ok, _} = ErlangCnode.Inbox.start(A, A.name(), dir: dir)
    {:ok, _} = ErlangCnode.Inbox.start(B, B.name(), dir: dir)
    :ok
  end

  def record(name, id) do
    file =
      Process.get(:handled_file) ||
        (
          dir = :persistent_term.get({__MODULE__, :dir})
          {:ok, file} = :file.open(handled_path(dir, name), [:raw, :binary, :append])
          Process.put(:handled_file, file)
          file
        )

    :ok = :file.write(file, <<id::unsigned-64>>)
  end

  def handled_path(dir, name), do: Path.join(dir, "#{name}.handled")

  @doc "The ids the inbox `name` handled, in order."
  def handled(dir, name) do
    case File.read(handled_path(dir, name)) do
      {:ok, bytes} -> for <<id::unsigned-64 <- bytes>>, do: id
      {:error, :enoent} -> []
    end
  end
end
