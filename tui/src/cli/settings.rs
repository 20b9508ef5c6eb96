//! The flags that are settings, as core's [`Setting`]s with the flag that set each (laid over the config file and
//! preset by `Context`).

use demod_voice_core::settings::Setting;

use super::{ConvertArgs, GlobalArgs, ProviderArg, ScaleArgs};

impl ScaleArgs {
    /// The flags given, as settings with the flag that set each (the preset is applied separately, first).
    pub fn settings(&self) -> Vec<(Setting, &'static str)> {
        let mut out = Vec::new();
        if let Some(v) = &self.speaker {
            out.push((Setting::Speaker(v.clone()), "--speaker"));
        }
        if let Some(v) = self.length_scale {
            out.push((Setting::LengthScale(v), "--length-scale"));
        }
        if let Some(v) = self.noise_scale {
            out.push((Setting::NoiseScale(v), "--noise-scale"));
        }
        if let Some(v) = self.noise_w {
            out.push((Setting::NoiseW(v), "--noise-w"));
        }
        if let Some(v) = self.sentence_silence {
            out.push((Setting::SentenceSilence(v), "--sentence-silence"));
        }
        if let Some(v) = self.volume {
            out.push((Setting::Volume(v), "--volume"));
        }
        if self.no_normalize {
            out.push((Setting::Normalize(false), "--no-normalize"));
        }
        if let Some(v) = self.sample_rate {
            out.push((Setting::SampleRate(v), "--sample-rate"));
        }
        out
    }
}

impl ConvertArgs {
    /// The converter flags given, as settings with the flag that set each.
    pub fn settings(&self) -> Vec<(Setting, &'static str)> {
        let mut out = Vec::new();
        if let Some(v) = self.engine {
            out.push((Setting::Engine(v), "--engine"));
        }
        if let Some(v) = self.pitch {
            out.push((Setting::PitchSemitones(v), "--pitch"));
        }
        if let Some(v) = self.formant {
            out.push((Setting::FormantRatio(v), "--formant"));
        }
        if let Some(v) = self.amount {
            out.push((Setting::ProfileAmount(v), "--amount"));
        }
        if let Some(v) = self.mix {
            out.push((Setting::Mix(v), "--mix"));
        }
        if let Some(v) = &self.to {
            out.push((Setting::Profile(v.clone()), "--to"));
        }
        out.extend(self.neural.settings());
        out
    }
}

impl crate::cli::NeuralArgs {
    /// The model flags given, as settings with the flag that set each.
    pub fn settings(&self) -> Vec<(Setting, &'static str)> {
        let mut out = Vec::new();
        if let Some(v) = &self.model {
            out.push((Setting::Model(v.clone()), "--model"));
        }
        if let Some(v) = self.tau {
            out.push((Setting::Tau(v), "--tau"));
        }
        if let Some(v) = self.model_speaker {
            out.push((Setting::ModelSpeaker(v), "--model-speaker"));
        }
        out
    }
}

impl GlobalArgs {
    /// The global flags that are settings, with the flag that set each.
    pub fn settings(&self) -> Vec<(Setting, &'static str)> {
        use demod_voice_core::config::ProviderName;
        let mut out = Vec::new();
        let provider = if self.gpu {
            Some((ProviderName::Cuda, "--gpu"))
        } else if self.cpu {
            Some((ProviderName::Cpu, "--cpu"))
        } else {
            self.provider.map(|p| {
                let name = match p {
                    ProviderArg::Auto => ProviderName::Auto,
                    ProviderArg::Cpu => ProviderName::Cpu,
                    ProviderArg::Cuda => ProviderName::Cuda,
                    ProviderArg::Tensorrt => ProviderName::Tensorrt,
                };
                (name, "--provider")
            })
        };
        if let Some((name, flag)) = provider {
            out.push((Setting::Provider(name), flag));
        }
        if let Some(id) = self.device_id {
            out.push((Setting::DeviceId(id), "--device-id"));
        }
        if let Some(threads) = self.threads {
            out.push((Setting::IntraThreads(threads), "--threads"));
        }
        if let Some(lib) = &self.ort_lib {
            out.push((Setting::RuntimeLibrary(lib.clone()), "--ort-lib"));
        }
        out
    }
}
