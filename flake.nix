{
  description = "erlang_cnode: PostgreSQL as a peer of Erlang and Elixir nodes";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        beam = pkgs.beam.packages.erlang_25;
      in {
        # `nix develop`: the same toolchain scripts/setup installs on Debian,
        # with the project's scripts on PATH.
        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.rustup
            pkgs.cargo-fuzz
            pkgs.pkg-config
            pkgs.openssl
            pkgs.llvmPackages.libclang
            pkgs.postgresql_15
            beam.erlang
            beam.elixir_1_14
          ];
          LIBCLANG_PATH = "${pkgs.llvmPackages.libclang.lib}/lib";
          # cargo-pgrx 0.18.1 is not in nixpkgs 24.05: scripts/setup runs
          # `cargo install --locked cargo-pgrx --version 0.18.1` and
          # `cargo pgrx init --pg15 $(command -v pg_config)` when missing.
          shellHook = ''
            export PATH="$PWD/scripts:$PWD/test_harness/bin:$PATH"
          '';
        };
      });
}
