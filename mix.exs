defmodule Mix.Tasks.Compile.ErlangCnodeNif do
  @moduledoc """
  Builds the `erlang_cnode_nif` crate (`native/nif`) with cargo and copies
  the library to `priv/native/`, where `ErlangCnode.Native` loads it.
  `CARGO_TARGET_DIR` (default `/var/tmp/erlang_cnode-target`, for users other
  than root with `-$USER` added) is shared with
  the rest of the workspace, so unchanged code is not rebuilt.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    target = System.get_env("CARGO_TARGET_DIR") || default_target()
    # Built as the primary package: only then is nif_init exported.
    args = ["build", "--release", "--quiet", "-p", "erlang_cnode_nif"]

    cargo =
      System.find_executable("cargo") ||
        Mix.raise(
          "cargo not found: the NIF is built with Rust (run scripts/setup, or install rustup)"
        )

    case System.cmd(cargo, args, env: [{"CARGO_TARGET_DIR", target}], stderr_to_stdout: true) do
      {_, 0} ->
        source = Path.join([target, "release", "liberlang_cnode_nif.so"])
        dest = Path.join([Mix.Project.app_path(), "priv", "native", "erlang_cnode_nif.so"])
        install(source, dest)

      {output, status} ->
        Mix.shell().error(output)
        Mix.raise("cargo build of the NIF failed (exit status #{status})")
    end
  end

  # As scripts/test and scripts/run choose it: one directory per user.
  defp default_target do
    case File.stat!("/proc/self").uid do
      0 -> "/var/tmp/erlang_cnode-target"
      _ -> "/var/tmp/erlang_cnode-target-" <> (System.get_env("USER") || "user")
    end
  end

  # Copies only a changed library, and replaces it by renaming a copy over
  # it: a VM that has the old one loaded keeps its mapping intact, where
  # writing into the loaded file would crash it.
  defp install(source, dest) do
    if Mix.Utils.stale?([source], [dest]) do
      File.mkdir_p!(Path.dirname(dest))
      File.cp!(source, dest <> ".new")
      File.rename!(dest <> ".new", dest)
      {:ok, []}
    else
      {:noop, []}
    end
  end
end

defmodule ErlangCnode.MixProject do
  use Mix.Project

  def project do
    [
      app: :erlang_cnode,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      test_paths: ["elixir_app/test"],
      compilers: [:erlang_cnode_nif | Mix.compilers()],
      start_permanent: Mix.env() == :prod,
      deps: [],
      docs: [main: "readme"]
    ]
  end

  def application do
    [
      mod: {ErlangCnode.Application, []},
      extra_applications: [:logger, :crypto] ++ test_applications(Mix.env())
    ]
  end

  # Debian's erlang-p1-pgsql: the PostgreSQL client of the end-to-end tests.
  defp test_applications(:test), do: [:p1_pgsql]
  defp test_applications(_), do: []

  defp elixirc_paths(:test), do: ["elixir_app/lib", "elixir_app/test/support"]
  defp elixirc_paths(_), do: ["elixir_app/lib"]
end
