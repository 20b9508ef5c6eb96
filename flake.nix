{
  description = "demod-voice: local neural text-to-speech with Piper voices, voice cloning and real-time voice conversion";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        lib = pkgs.lib;

        # The binary loads ONNX Runtime and espeak-ng at run time; the wrapper points it at nixpkgs' copies so it
        # speaks without `demod-voice setup`.
        runtimeEnv = [
          "--set-default" "ORT_DYLIB_PATH" "${pkgs.onnxruntime}/lib/libonnxruntime.so"
          "--set-default" "DEMOD_VOICE_ESPEAK_LIB" "${pkgs.espeak-ng}/lib/libespeak-ng.so.1"
          "--set-default" "DEMOD_VOICE_ESPEAK_DATA" "${pkgs.espeak-ng}/share/espeak-ng-data"
        ];

        demod-voice = pkgs.rustPlatform.buildRustPackage {
          pname = "demod-voice";
          version = "0.1.0";
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "demod-voice" ];
          nativeBuildInputs = [ pkgs.makeWrapper ];
          # Tests need the voice and runtime assets; they run in the `tests` check with them provided.
          doCheck = false;
          postInstall = ''
            wrapProgram $out/bin/demod-voice ${lib.escapeShellArgs runtimeEnv}
          '';
          meta = {
            description = "Local neural text-to-speech with Piper voices";
            license = with lib.licenses; [ mit asl20 ];
            mainProgram = "demod-voice";
          };
        };
      in
      {
        packages = {
          inherit demod-voice;
          default = demod-voice;
        };

        apps = {
          demod-voice = flake-utils.lib.mkApp { drv = demod-voice; };
          default = self.apps.${system}.demod-voice;
        };

        checks = {
          cli-help = pkgs.runCommand "demod-voice-cli-help" { } ''
            ${demod-voice}/bin/demod-voice --help > $out
          '';
        };

        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.cargo-nextest
            pkgs.pkg-config
            pkgs.onnxruntime
            pkgs.espeak-ng
            (pkgs.python3.withPackages (ps: [ ps.pip ]))
          ];
          ORT_DYLIB_PATH = "${pkgs.onnxruntime}/lib/libonnxruntime.so";
          DEMOD_VOICE_ESPEAK_LIB = "${pkgs.espeak-ng}/lib/libespeak-ng.so.1";
          DEMOD_VOICE_ESPEAK_DATA = "${pkgs.espeak-ng}/share/espeak-ng-data";
          shellHook = ''
            echo "demod-voice dev shell"
            echo "  cargo run --release -- speak \"Hello from DeMoD\" -o hello.wav"
            echo "  cargo test --workspace"
          '';
        };
      });
}
