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
          shellHook = ''
            export PATH="$PWD/scripts:$PATH"
          '';
        };
      });
}
