//! Command-line interface definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use demod_voice_core::limits;

mod conversion;
mod parsers;
mod settings;

pub use conversion::{CloneArgs, ConvertArgs, ModelsCommand, NeuralArgs, SimilarityArgs, ZeroShotArgs};

use parsers::{seconds, within, workers};

/// Local neural text-to-speech with Piper voices.
#[derive(Debug, Parser)]
#[command(name = "demod-voice", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Without a subcommand on a terminal, the full-screen app opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// ONNX Runtime library to use (libonnxruntime.so); overrides ORT_DYLIB_PATH and the data directory.
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,

    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never download assets; fail with instructions instead.
    #[arg(long, global = true)]
    pub offline: bool,

    /// Config file (default: $XDG_CONFIG_HOME/demod-voice/config.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Run models on the GPU (CUDA); falls back to CPU with a warning when impossible.
    #[arg(long, global = true, conflicts_with_all = ["cpu", "provider"])]
    pub gpu: bool,

    /// Run models on the CPU.
    #[arg(long, global = true, conflicts_with = "provider")]
    pub cpu: bool,

    /// Execution provider: auto, cpu, cuda or tensorrt.
    #[arg(long, global = true, value_name = "NAME")]
    pub provider: Option<ProviderArg>,

    /// GPU index for cuda/tensorrt.
    #[arg(long, global = true, value_name = "N")]
    pub device_id: Option<i32>,

    /// Intra-op threads (default: physical cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    Auto,
    Cpu,
    Cuda,
    Tensorrt,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the full-screen terminal app (also what `demod-voice` alone does on a terminal).
    Tui,

    /// Speak text with a Piper voice.
    Speak(SpeakArgs),

    /// The old tool's spelling: `piper-infer MODEL TEXT --output FILE [--speaker ID]`.
    #[command(name = "piper-infer")]
    PiperInfer(PiperInferArgs),

    /// Speak TEXT in the voice of the REFERENCE recording: the base voice's speech with pitch, vocal tract and
    /// timbre moved toward the reference (fitted against a speaker encoder; cached per reference).
    Clone(CloneArgs),

    /// The old tool's spelling of `clone`: `xtts-zero-shot REF TEXT --output FILE [--language L]`.
    #[command(name = "xtts-zero-shot")]
    XttsZeroShot(ZeroShotArgs),

    /// Show the phonemes and ids a voice would use for TEXT.
    Phonemize(PhonemizeArgs),

    /// Installed voices.
    Voices {
        #[command(subcommand)]
        command: VoicesCommand,
    },

    /// Install ONNX Runtime, espeak-ng and the default voice into the data directory.
    Setup(SetupArgs),

    /// Measure load time, real-time factor and time to first audio.
    Bench(BenchArgs),

    /// Show, create or check the config file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },

    /// Factory and user presets.
    Presets {
        #[command(subcommand)]
        command: PresetsCommand,
    },

    /// Check the installation: runtime, GPU, espeak-ng, voices, config, disk, sound devices.
    Health(HealthArgs),

    /// Convert a recording toward a voice profile or by pitch/formant ratios, through the real-time engine.
    Convert(ConvertArgs),

    /// Synthesise every row of a manifest (CSV, JSON lines, YAML or plain text); resumable and shardable.
    Batch(BatchArgs),

    /// How much recordings sound like a reference's speaker (speaker-encoder cosine similarity).
    Similarity(SimilarityArgs),

    /// Neural conversion models (RVC, OpenVoice-format tone colour): install, list, show, remove.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },

    /// A speech service with warm voices: HTTP (OpenAI-compatible /v1/audio/speech) and Wyoming (Home Assistant).
    Serve(ServeArgs),

    /// Turn recordings + transcripts (LJSpeech layout) into a Piper fine-tuning dataset.
    #[command(alias = "piper-preprocess")]
    Preprocess(PreprocessArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: Option<BatchCommand>,
    /// The manifest: .csv (reference,text,output[,language,speaker,...]), .jsonl, .yaml (defaults + jobs) or .txt.
    pub manifest: Option<PathBuf>,
    /// Parallel workers, 1-256 (they share one loaded voice per voice).
    #[arg(long, default_value_t = 1, value_parser = workers)]
    pub jobs: usize,
    /// Only validate the manifest and report every invalid row.
    #[arg(long)]
    pub check: bool,
    /// Refuse to run when any row is invalid (otherwise invalid rows are skipped and reported).
    #[arg(long)]
    pub strict: bool,
    /// Folder for the journal (default: beside the manifest).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Outputs resolve inside this folder instead of the manifest's.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Let rows give absolute paths, `..` above the manifest's folder, and preset or profile paths (by default a
    /// row that does is refused as invalid and the others run).
    #[arg(long)]
    pub allow_outside_paths: bool,
    /// Redo every job, ignoring the journal.
    #[arg(long)]
    pub force: bool,
    /// Replace existing outputs the journal does not know.
    #[arg(long)]
    pub overwrite: bool,
    /// Stop at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Give up on a job after this many seconds (above 0, at most a week).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<f64>,
    /// Run only shard K of N (0-based), e.g. from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<demod_voice_core::batch::Shard>,
    /// Write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No full-screen interface: progress on stderr (what happens anyway without a terminal or with --json-events).
    #[arg(long)]
    pub headless: bool,
    /// Machine-readable progress events on stdout, one JSON object a line.
    #[arg(long)]
    pub json_events: bool,
    #[command(flatten)]
    pub scales: ScaleArgs,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Merge journals (e.g. one per shard) into one report.
    Report {
        #[arg(required = true)]
        journals: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// Folder with wavs/ and metadata.csv (id|text, id|text|normalized or id|speaker|text).
    #[arg(long)]
    pub input_dir: PathBuf,
    /// Folder for the dataset (created; must not be inside the input folder).
    #[arg(long)]
    pub output_dir: PathBuf,
    /// espeak-ng voice for phonemes.
    #[arg(long, default_value = "en-us")]
    pub language: String,
    /// Sample rate of the processed clips (default: preprocessing.sample_rate, 22050).
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Treat a three-column metadata.csv as id|speaker|text (otherwise recognised automatically).
    #[arg(long)]
    pub multi_speaker: bool,
    /// Worker threads (default: logical cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective config and where each value came from.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a commented default config file (to the default location, or PATH).
    Init {
        path: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a config file and report the first problem.
    Check { path: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum PresetsCommand {
    /// List factory and user presets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one preset.
    Show { name: String },
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print JSON (layout: docs/health.schema.json).
    #[arg(long)]
    pub json: bool,
    /// Also load the default voice and synthesise a word.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct VoiceArgs {
    /// Voice: an installed name, a catalogue key (installed on first use), or a path to an .onnx file (its
    /// .onnx.json beside it).
    #[arg(long, value_name = "NAME|KEY|PATH")]
    pub voice: Option<String>,
    /// Language (de, pt-BR, en_US): the installed voice of it, best quality first, else the catalogue's best,
    /// installed on first use. --voice wins over it.
    #[arg(short = 'l', long, value_name = "CODE")]
    pub language: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ScaleArgs {
    /// Preset name (see `presets list`) or path to a preset file.
    #[arg(long, value_name = "NAME|PATH")]
    pub preset: Option<String>,

    /// Speaker id or name (multi-speaker voices).
    #[arg(long, value_name = "ID|NAME")]
    pub speaker: Option<String>,

    /// Phoneme length: above 1 is slower, below 1 faster (0.05..20).
    #[arg(long, value_name = "SCALE", value_parser = within(limits::LENGTH_SCALE))]
    pub length_scale: Option<f32>,

    /// Generator noise (0..5).
    #[arg(long, value_name = "SCALE", value_parser = within(limits::NOISE_SCALE))]
    pub noise_scale: Option<f32>,

    /// Phoneme width noise (0..5).
    #[arg(long = "noise-w", value_name = "SCALE", value_parser = within(limits::NOISE_W))]
    pub noise_w: Option<f32>,

    /// Silence after each sentence, seconds (0..60).
    #[arg(long, value_name = "SECS", value_parser = within(limits::SENTENCE_SILENCE))]
    pub sentence_silence: Option<f32>,

    /// Output gain after normalisation (1.0 = unchanged; 0..10).
    #[arg(long, value_parser = within(limits::VOLUME))]
    pub volume: Option<f32>,

    /// Keep the model's own level instead of peak-normalising each sentence.
    #[arg(long)]
    pub no_normalize: bool,

    /// Output sample rate in Hz (resampled when it differs from the voice's).
    #[arg(long, value_name = "HZ")]
    pub sample_rate: Option<u32>,
}

#[derive(Debug, Args)]
pub struct SpeakArgs {
    /// Text to speak; read from -i or standard input when absent.
    pub text: Option<String>,

    /// Read text from FILE (`-` for standard input).
    #[arg(short, long, value_name = "FILE|-", conflicts_with = "text")]
    pub input: Option<PathBuf>,

    #[command(flatten)]
    pub voice: VoiceArgs,

    /// Write a WAV file (`-` writes WAV to standard output).
    #[arg(short, long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,

    /// Stream raw s16le mono PCM to standard output, sentence by sentence.
    #[arg(long, conflicts_with = "output")]
    pub output_raw: bool,

    /// Send the job to a running `demod-voice serve` (http://HOST:PORT) instead of loading the voice here; the
    /// output is the same. Its token, if it wants one, comes from DEMOD_VOICE_TOKEN.
    #[arg(long, value_name = "URL", env = "DEMOD_VOICE_SERVER")]
    pub server: Option<String>,

    #[command(flatten)]
    pub scales: ScaleArgs,
}

#[derive(Debug, Args)]
pub struct PiperInferArgs {
    /// Voice model (.onnx).
    pub model: String,
    /// Text to speak.
    pub text: String,
    /// Output WAV.
    #[arg(short, long, default_value = "output.wav")]
    pub output: PathBuf,
    /// Speaker id or name.
    #[arg(short, long)]
    pub speaker: Option<String>,
    /// Preset name or path.
    #[arg(long)]
    pub preset: Option<String>,
}

#[derive(Debug, Args)]
pub struct PhonemizeArgs {
    /// Text to phonemise; read from standard input when absent.
    pub text: Option<String>,

    #[command(flatten)]
    pub voice: VoiceArgs,

    /// Print JSON: {"sentences": [{"text", "phonemes", "phoneme_ids"}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum VoicesCommand {
    /// List installed voices and voice profiles.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a voice profile from reference recordings (WAV, at least 3 s of voiced speech in all).
    AddProfile {
        /// Profile name (letters, digits, '-', '_', '.').
        name: String,
        /// Reference recordings.
        #[arg(required = true)]
        references: Vec<PathBuf>,
        /// Replace an existing profile of that name.
        #[arg(long)]
        force: bool,
    },
    /// Show a voice profile or an installed voice.
    Show { name: String },
    /// Piper's voice catalogue: every voice there is to download, with its language, quality and size.
    Catalog {
        /// Only voices of this language (de, pt-BR, en_US).
        #[arg(short = 'l', long, value_name = "CODE")]
        language: Option<String>,
        /// Only voices of this quality (x_low, low, medium, high).
        #[arg(long, value_name = "Q")]
        quality: Option<String>,
        /// Fetch the catalogue again even when the cached copy is fresh.
        #[arg(long)]
        refresh: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download voices from the catalogue into the voice library (size and md5 checked; resumes).
    Download {
        /// Catalogue keys (or their aliases), e.g. de_DE-thorsten-medium.
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        /// Download again even when installed.
        #[arg(long)]
        force: bool,
    },
    /// Remove installed voices from the voice library.
    Remove {
        /// Installed voice names (catalogue keys or aliases).
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Install the CUDA build of ONNX Runtime (onnxruntime-gpu).
    #[arg(long)]
    pub gpu: bool,
    /// Reinstall even what is already present.
    #[arg(long)]
    pub force: bool,
    /// Python interpreter whose pip downloads the wheels.
    #[arg(long, default_value = "python3", env = "DEMOD_VOICE_PYTHON")]
    pub python: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measure the real-time engine instead of speech: audio-side cost per block, dsp worker cost, latency.
    #[arg(long)]
    pub realtime: bool,
    /// Measure the terminal app instead: the time to draw one frame of the Batch screen with 10 000 jobs.
    #[arg(long, conflicts_with = "realtime")]
    pub app_frame: bool,
    /// Measure the terminal app's Speak instead: from the key to the output device taking the first sample, for
    /// one sentence on the default voice (needs an output device).
    #[arg(long, conflicts_with_all = ["realtime", "app_frame"])]
    pub speak_first_audio: bool,
    /// With --realtime: also measure this installed neural model's engine (per-hop inference, real-time share,
    /// latency) on the same synthetic voice.
    #[arg(long, value_name = "NAME", requires = "realtime")]
    pub model: Option<String>,
    /// Soak the real-time engine instead: random blocks of 1-4096 samples through every engine with automation,
    /// engine switches and stalling workers; fails on non-finite output or any drift from the latency.
    #[arg(long, conflicts_with_all = ["realtime", "app_frame", "speak_first_audio"])]
    pub soak: bool,
    /// Audio-side calls for --soak.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub blocks: u64,
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Timed repetitions of the paragraph (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP address (`off` for none). Port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub http: Option<String>,
    /// Wyoming address (Home Assistant), e.g. 127.0.0.1:10200; none unless given.
    #[arg(long, value_name = "ADDR")]
    pub wyoming: Option<String>,
    /// More voices to load before the first request (installed names), comma-separated.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub voices: Vec<String>,
    /// Requests waiting or running at once; more are refused (HTTP 429, a Wyoming error).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(usize))]
    pub max_queue: usize,
    /// Bearer token every HTTP endpoint but /health requires.
    #[arg(long, value_name = "TOKEN", env = "DEMOD_VOICE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sessions per voice (default: one with ONNX Runtime's default threads; with the global --threads N, cores /
    /// N sessions of N threads each).
    #[arg(long, value_name = "N")]
    pub sessions: Option<usize>,
    /// Loaded voices may use this much memory (model sizes x sessions); the least recently used idle one goes.
    #[arg(long, value_name = "MB", default_value_t = 2048)]
    pub memory_mb: u64,
    /// Longest wait for a session, and longest synthesis of one request, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = seconds)]
    pub timeout: f64,
    /// A client must send its whole HTTP request within this many seconds (slow clients are answered 408).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = seconds)]
    pub client_timeout: f64,
    #[command(flatten)]
    pub voice: VoiceArgs,
    #[command(flatten)]
    pub scales: ScaleArgs,
}
