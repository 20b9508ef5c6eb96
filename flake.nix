{
  description = "demod-voice: local neural text-to-speech with Piper voices, voice cloning and real-time voice conversion";

  # flake.lock is not committed: it cannot be produced offline. The first `nix build`, `nix run` or
  # `nix develop` on a connected machine writes it (commit it there to pin nixpkgs).
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        cudaPkgs = import nixpkgs { inherit system; config = { allowUnfree = true; cudaSupport = true; }; };
        lib = pkgs.lib;
        version = "0.1.0";
        src = lib.cleanSource ./.;

        # The binary loads ONNX Runtime and espeak-ng at run time (nothing is linked or downloaded at build time).
        # The wrapper points it at nixpkgs' copies, so it speaks without `demod-voice setup`; every variable here
        # is honoured by the binary and covered by a test (tui/tests/packaging_env.rs).
        wrapperArgs = onnxruntime: [
          "--set-default" "ORT_DYLIB_PATH" "${onnxruntime}/lib/libonnxruntime.so"
          "--set-default" "DEMOD_VOICE_ESPEAK_LIB" "${pkgs.espeak-ng}/lib/libespeak-ng.so.1"
          "--set-default" "DEMOD_VOICE_ESPEAK_DATA" "${pkgs.espeak-ng}/share/espeak-ng-data"
        ];

        mkDemodVoice = { pname, onnxruntime }: pkgs.rustPlatform.buildRustPackage {
          inherit pname version src;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "demod-voice" ];
          # cpal (the terminal app's sound) links ALSA, found through pkg-config.
          nativeBuildInputs = [ pkgs.makeWrapper pkgs.pkg-config ];
          buildInputs = [ pkgs.alsa-lib ];
          # The full suite needs the voice and network access for its assets; it runs in the `tests` check
          # without them (unit tests only) and in CI.
          doCheck = false;
          postInstall = ''
            wrapProgram $out/bin/demod-voice ${lib.escapeShellArgs (wrapperArgs onnxruntime)}
          '';
          meta = {
            description = "Local neural text-to-speech with Piper voices and real-time voice conversion";
            license = with lib.licenses; [ mit asl20 ];
            mainProgram = "demod-voice";
          };
        };

        demod-voice = mkDemodVoice { pname = "demod-voice"; onnxruntime = pkgs.onnxruntime; };
        demod-voice-cuda = mkDemodVoice {
          pname = "demod-voice-cuda";
          onnxruntime = cudaPkgs.onnxruntime;
        };

        # The CLAP and VST3 bundles, laid out as `cargo xtask bundle` does, under $out/lib/clap and $out/lib/vst3.
        demod-voice-plugin = pkgs.rustPlatform.buildRustPackage {
          pname = "demod-voice-plugin";
          inherit version src;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "demod-voice-plugin" ];
          doCheck = false;
          nativeBuildInputs = [ pkgs.patchelf ];
          installPhase = ''
            runHook preInstall
            lib=$(find target -path '*/release/libdemod_voice_plugin.so' | head -n1)
            # The editor window loads libX11, libxcb and libGL at run time (baseview dlopens them).
            patchelf --add-rpath "${lib.makeLibraryPath [ pkgs.libGL pkgs.xorg.libX11 pkgs.xorg.libxcb pkgs.xorg.libXcursor ]}" "$lib"
            mkdir -p "$out/lib/clap" "$out/lib/vst3/DeMoD Voice.vst3/Contents/${pkgs.stdenv.hostPlatform.parsed.cpu.name}-linux"
            cp "$lib" "$out/lib/clap/DeMoD Voice.clap"
            cp "$lib" "$out/lib/vst3/DeMoD Voice.vst3/Contents/${pkgs.stdenv.hostPlatform.parsed.cpu.name}-linux/DeMoD Voice.so"
            runHook postInstall
          '';
          meta = {
            description = "DeMoD Voice: real-time voice conversion as a VST3 and CLAP plugin";
            license = with lib.licenses; [ mit asl20 ];
          };
        };

        dockerImage = pkgs.dockerTools.buildLayeredImage {
          name = "demod-voice";
          tag = version;
          contents = [ demod-voice pkgs.cacert pkgs.bashInteractive pkgs.coreutils ];
          extraCommands = "mkdir -p workspace tmp && chmod 1777 tmp";
          config = {
            Entrypoint = [ "${demod-voice}/bin/demod-voice" ];
            # The speech service on every interface of the container: HTTP (OpenAI-compatible) and Wyoming.
            Cmd = [ "serve" "--http" "0.0.0.0:5000" "--wyoming" "0.0.0.0:10200" ];
            ExposedPorts = { "5000/tcp" = { }; "10200/tcp" = { }; };
            WorkingDir = "/workspace";
            Volumes = { "/workspace" = { }; };
            Env = [
              "HOME=/tmp"
              "DEMOD_VOICE_DATA_DIR=/workspace/.demod-voice"
            ];
          };
        };

        cargoCheck = name: command: pkgs.rustPlatform.buildRustPackage {
          pname = "demod-voice-${name}";
          inherit version src;
          cargoLock.lockFile = ./Cargo.lock;
          nativeBuildInputs = [ pkgs.clippy pkgs.rustfmt pkgs.pkg-config ];
          buildInputs = [ pkgs.alsa-lib ];
          buildPhase = command;
          doCheck = false;
          installPhase = "touch $out";
        };
      in
      {
        packages = {
          inherit demod-voice demod-voice-cuda demod-voice-plugin dockerImage;
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
          # Runtime and espeak-ng come from the wrapper; no voice is installed in the sandbox (a warning).
          health-check = pkgs.runCommand "demod-voice-health-check" { } ''
            export HOME=$TMPDIR
            ${demod-voice}/bin/demod-voice --offline health --json > $out
          '';
          # The tests that need no network and no downloaded voice.
          tests = cargoCheck "tests" ''
            export HOME=$TMPDIR
            cargo test --workspace --lib --offline
          '';
          clippy = cargoCheck "clippy" "cargo clippy --workspace --all-targets --offline -- -D warnings";
          rustfmt = cargoCheck "rustfmt" "cargo fmt --all -- --check";
        };

        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.cargo-nextest
            pkgs.pkg-config
            pkgs.alsa-lib
            pkgs.libjack2
            pkgs.onnxruntime
            pkgs.espeak-ng
            pkgs.tmux
            (pkgs.python3.withPackages (ps: [ ps.pip ]))
          ] ++ lib.optionals pkgs.stdenv.isLinux [ cudaPkgs.cudaPackages.cudatoolkit ];
          ORT_DYLIB_PATH = "${pkgs.onnxruntime}/lib/libonnxruntime.so";
          DEMOD_VOICE_ESPEAK_LIB = "${pkgs.espeak-ng}/lib/libespeak-ng.so.1";
          DEMOD_VOICE_ESPEAK_DATA = "${pkgs.espeak-ng}/share/espeak-ng-data";
          shellHook = ''
            echo "demod-voice dev shell (ONNX Runtime and espeak-ng from nixpkgs)"
            echo "  cargo run --release -- speak \"Hello from DeMoD\" -o hello.wav"
            echo "  cargo test --workspace"
            echo "  cargo xtask bundle demod-voice-plugin --release"
          '';
        };
      });
}
