defmodule Mix.Tasks.ErlangCnode.Node do
  @shortdoc "Runs a named node with erlang_cnode and the demo service, in the foreground"
  @moduledoc """
  Starts this project as a named, distributed node that PostgreSQL can
  call, with the `ErlangCnode` application and the `demo` service, and
  stays in the foreground until stopped (Ctrl-C twice).

      mix erlang_cnode.node --name demo --cookie secret
      mix erlang_cnode.node --name demo@db1.example.com --cookie secret
      ERLANG_COOKIE=secret mix erlang_cnode.node --name demo

  Then, in SQL:

      SELECT erlang_connect('demo@myhost', 'secret');
      SELECT erlang_service_call('demo@myhost', 'demo', 'add', '{"a": 1, "b": 2}');

  ## Options

    * `--name NAME` — the node name, `NAME` or `NAME@HOST` (default `demo`).
      A host with a dot in it means a long name (as `elixir --name`), else
      a short one (as `elixir --sname`).
    * `--long` — use a long name even without a host.
    * `--cookie COOKIE` — the cookie. Default: `$ERLANG_COOKIE`, else
      `~/.erlang.cookie`. It is never printed; prefer the environment
      variable, since a command line is visible to other users in `ps`.
    * `--service MODULE` — also register this service module (repeatable).

  A process registered as `demo` prints every message it receives.

  EPMD is started if it is not running. As with `erl`, starting distribution
  creates `~/.erlang.cookie` (with a random cookie) if there is none, before
  the given cookie replaces it for this node.
  """
  use Mix.Task

  @switches [name: :string, long: :boolean, cookie: :string, service: :keep]

  @impl true
  def run(argv) do
    {opts, rest, invalid} = OptionParser.parse(argv, strict: @switches)

    if rest != [] or invalid != [] do
      Mix.raise(
        "unexpected arguments: #{Enum.join(rest ++ Enum.map(invalid, &elem(&1, 0)), " ")}; see mix help erlang_cnode.node"
      )
    end

    name = Keyword.get(opts, :name, "demo")

    long? =
      Keyword.get(opts, :long, false) or
        String.contains?(hd(tl(String.split(name <> "@", "@"))), ".")

    cookie = Keyword.get(opts, :cookie) || System.get_env("ERLANG_COOKIE")
    System.delete_env("ERLANG_COOKIE")

    start_distribution(name, long?)
    if cookie, do: Node.set_cookie(String.to_atom(cookie))

    Mix.Task.run("app.start")
    ErlangCnode.Registry.register(ErlangCnode.Demo)

    for module <- Keyword.get_values(opts, :service) do
      ErlangCnode.Registry.register(Module.concat([module]))
    end

    # A process to send messages to by hand: erlang_send(node, 'demo', …).
    Process.register(spawn(&print_messages/0), :demo)
    services = Enum.map_join(ErlangCnode.Registry.services(), ", ", &elem(&1, 0))

    Mix.shell().info(
      "erlang_cnode: node #{node()} is up, serving #{services} (Ctrl-C twice stops it)"
    )

    Mix.shell().info("erlang_cnode: from SQL: SELECT erlang_connect('#{node()}');")
    Process.sleep(:infinity)
  end

  defp print_messages do
    receive do
      message -> IO.inspect(message, label: "demo received")
    end

    print_messages()
  end

  defp start_distribution(name, long?) do
    # Node.start needs EPMD; `erl -sname` would have started it.
    System.cmd("epmd", ["-daemon"])

    case Node.start(String.to_atom(name), if(long?, do: :longnames, else: :shortnames)) do
      {:ok, _} -> :ok
      {:error, reason} -> Mix.raise("cannot start node #{name}: #{inspect(reason)}")
    end
  end
end
