//! espeak-ng, loaded at run time.
//!
//! The library is opened with `libloading`, so building needs no espeak headers and the binary runs with whichever
//! copy the asset search finds (the `espeakng-loader` wheel unpacked by `setup`, a Nix store path, or the system's).
//! espeak-ng keeps global state, so one [`Espeak`] exists per process and every call goes through its mutex.
//!
//! The stock library lacks Piper's `espeak_TextToPhonemesWithTerminator`; [`Espeak::clauses`] recovers each
//! clause's terminator from the text that `espeak_TextToPhonemes` consumed (see [`terminator_of`]).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

const ENOUTPUT_MODE_SYNCHRONOUS: c_int = 0x0001;
/// espeakCHARS_AUTO, as Piper uses: UTF-8, falling back to 8-bit for invalid sequences.
const ESPEAK_CHARS_AUTO: c_int = 0;
const ESPEAK_PHONEMES_IPA: c_int = 0x02;
const ENS_OK: u32 = 0;

type InitializePathFn = unsafe extern "C" fn(*const c_char);
type InitializeFn = unsafe extern "C" fn(*mut *mut c_void) -> u32;
type InitializeOutputFn = unsafe extern "C" fn(c_int, c_int, *const c_char) -> u32;
type SetVoiceByNameFn = unsafe extern "C" fn(*const c_char) -> u32;
type TextToPhonemesFn = unsafe extern "C" fn(*mut *const c_void, c_int, c_int) -> *const c_char;
type InfoFn = unsafe extern "C" fn(*mut *const c_char) -> *const c_char;
type StatusMessageFn = unsafe extern "C" fn(u32, *mut c_char, usize);

/// Where the espeak-ng library and its data live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakPaths {
    /// The shared library (`libespeak-ng.so.1`).
    pub library: PathBuf,
    /// The `espeak-ng-data` folder (holds `phontab`, `en_dict`, ...).
    pub data_dir: PathBuf,
}

/// How a clause ended, as Piper's modified espeak-ng reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// `.`
    Period,
    /// `?`
    Question,
    /// `!`
    Exclamation,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `;`
    Semicolon,
    /// A paragraph break (a blank line) or the end of the text: ends the sentence, adds no punctuation.
    Break,
    /// End of text, or a break espeak made without punctuation.
    None,
}

impl Terminator {
    /// The punctuation Piper appends to the clause's phonemes.
    pub fn as_str(self) -> &'static str {
        match self {
            Terminator::Period => ".",
            Terminator::Question => "?",
            Terminator::Exclamation => "!",
            Terminator::Comma => ",",
            Terminator::Colon => ":",
            Terminator::Semicolon => ";",
            Terminator::Break | Terminator::None => "",
        }
    }

    /// Whether the clause closes a sentence (Piper synthesises each sentence on its own).
    pub fn ends_sentence(self) -> bool {
        matches!(self, Terminator::Period | Terminator::Question | Terminator::Exclamation | Terminator::Break)
    }
}

/// One clause as espeak-ng phonemised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// IPA phonemes, words separated by spaces, language-switch marks still present.
    pub phonemes: String,
    /// The punctuation that ended the clause.
    pub terminator: Terminator,
    /// The source text espeak consumed for this clause.
    pub text: String,
}

struct Api {
    // NOTE: the library must outlive the function pointers below; it is never unloaded.
    _lib: libloading::Library,
    set_voice_by_name: SetVoiceByNameFn,
    text_to_phonemes: TextToPhonemesFn,
    status_message: StatusMessageFn,
    current_voice: Option<String>,
}

// SAFETY: espeak-ng is only ever called while holding the `Espeak` mutex, so its global state is never touched
// from two threads at once; the function pointers themselves are plain code addresses.
unsafe impl Send for Api {}

/// The process-wide espeak-ng instance.
pub struct Espeak {
    api: Mutex<Api>,
    paths: EspeakPaths,
    version: String,
}

impl std::fmt::Debug for Espeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Espeak").field("paths", &self.paths).field("version", &self.version).finish()
    }
}

static INSTANCE: OnceLock<Espeak> = OnceLock::new();

impl Espeak {
    /// Load espeak-ng from `paths` the first time; later calls return the same instance (espeak-ng cannot be
    /// initialised twice in one process). Asking for a different location later is an error.
    pub fn get_or_load(paths: &EspeakPaths) -> Result<&'static Espeak> {
        if let Some(found) = Self::already_loaded(paths) {
            return found;
        }
        // espeak-ng's initialisation touches global state: one thread at a time, and only once.
        static LOADING: Mutex<()> = Mutex::new(());
        let _guard = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = Self::already_loaded(paths) {
            return found;
        }
        let espeak = Self::load(paths)?;
        Ok(INSTANCE.get_or_init(|| espeak))
    }

    /// The loaded instance if there is one: it, when it came from `paths`, else an error naming where it came from.
    fn already_loaded(paths: &EspeakPaths) -> Option<Result<&'static Espeak>> {
        let existing = INSTANCE.get()?;
        Some(if existing.paths == *paths {
            Ok(existing)
        } else {
            Err(Error::EspeakAlreadyLoaded { loaded: existing.paths.library.clone() })
        })
    }

    /// The instance loaded earlier, if any.
    pub fn loaded() -> Option<&'static Espeak> {
        INSTANCE.get()
    }

    fn load(paths: &EspeakPaths) -> Result<Espeak> {
        if !paths.data_dir.join("phontab").is_file() {
            return Err(Error::EspeakData { path: paths.data_dir.clone() });
        }
        // SAFETY: loading espeak-ng runs its ELF constructors, which only set up static tables.
        let lib = unsafe { libloading::Library::new(&paths.library) }
            .map_err(|source| Error::EspeakLibrary { path: paths.library.clone(), source })?;
        let sym_err = |name: &str| Error::EspeakSymbol { path: paths.library.clone(), symbol: name.to_string() };
        // SAFETY: each symbol is looked up with the signature espeak-ng's public header declares for it.
        let (initialize_path, initialize, initialize_output, set_voice_by_name, text_to_phonemes, info, status_fn) = unsafe {
            (
                *lib.get::<InitializePathFn>(b"espeak_ng_InitializePath\0")
                    .map_err(|_| sym_err("espeak_ng_InitializePath"))?,
                *lib.get::<InitializeFn>(b"espeak_ng_Initialize\0").map_err(|_| sym_err("espeak_ng_Initialize"))?,
                *lib.get::<InitializeOutputFn>(b"espeak_ng_InitializeOutput\0")
                    .map_err(|_| sym_err("espeak_ng_InitializeOutput"))?,
                *lib.get::<SetVoiceByNameFn>(b"espeak_ng_SetVoiceByName\0")
                    .map_err(|_| sym_err("espeak_ng_SetVoiceByName"))?,
                *lib.get::<TextToPhonemesFn>(b"espeak_TextToPhonemes\0")
                    .map_err(|_| sym_err("espeak_TextToPhonemes"))?,
                *lib.get::<InfoFn>(b"espeak_Info\0").map_err(|_| sym_err("espeak_Info"))?,
                *lib.get::<StatusMessageFn>(b"espeak_ng_GetStatusCodeMessage\0")
                    .map_err(|_| sym_err("espeak_ng_GetStatusCodeMessage"))?,
            )
        };
        let data = path_to_cstring(&paths.data_dir)?;
        let mut context: *mut c_void = std::ptr::null_mut();
        // SAFETY: `data` outlives the call (espeak copies the path); `context` is a valid out-pointer. The
        // espeak_ng_* initialisers return a status instead of calling exit() like espeak_Initialize does.
        let status = unsafe {
            initialize_path(data.as_ptr());
            initialize(&mut context)
        };
        if status != ENS_OK {
            return Err(Error::EspeakInit { path: paths.data_dir.clone(), message: status_message(status_fn, status) });
        }
        // SAFETY: synchronous output mode with no device opens nothing; only sets up internal buffers.
        let status = unsafe { initialize_output(ENOUTPUT_MODE_SYNCHRONOUS, 0, std::ptr::null()) };
        if status != ENS_OK {
            return Err(Error::EspeakInit { path: paths.data_dir.clone(), message: status_message(status_fn, status) });
        }
        let mut data_path_ptr: *const c_char = std::ptr::null();
        // SAFETY: espeak_Info returns a pointer to a static version string.
        let version = unsafe {
            let v = info(&mut data_path_ptr);
            if v.is_null() {
                String::from("unknown")
            } else {
                CStr::from_ptr(v).to_string_lossy().into_owned()
            }
        };
        let api =
            Api { _lib: lib, set_voice_by_name, text_to_phonemes, status_message: status_fn, current_voice: None };
        Ok(Espeak { api: Mutex::new(api), paths: paths.clone(), version })
    }

    /// espeak-ng's version string, e.g. `1.52.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the library and data were loaded from.
    pub fn paths(&self) -> &EspeakPaths {
        &self.paths
    }

    /// Phonemise `text` with the espeak voice `voice` (e.g. `en-us`), one entry per clause.
    pub fn clauses(&self, voice: &str, text: &str) -> Result<Vec<Clause>> {
        // espeak reads up to a NUL; an embedded NUL would silently cut the text short.
        let cleaned: String = text.chars().map(|c| if c == '\0' { ' ' } else { c }).collect();
        let c_text =
            CString::new(cleaned).map_err(|_| Error::InvalidText { reason: "text contains a NUL byte".into() })?;
        let mut api = self.api.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        api.set_voice(voice)?;
        let bytes = c_text.as_bytes();
        let base = c_text.as_ptr() as *const u8;
        let mut cursor: *const c_void = base as *const c_void;
        let mut clauses = Vec::new();
        let mut carried = String::new();
        while !cursor.is_null() {
            // SAFETY: `cursor` points into `c_text` (NUL-terminated, alive for the loop); espeak advances it to
            // the start of the next clause or sets it to NULL at the end. The returned phoneme string lives in a
            // static buffer that the next call overwrites, so it is copied at once.
            let (phonemes, next) = unsafe {
                let start = cursor;
                let out = (api.text_to_phonemes)(&mut cursor, ESPEAK_CHARS_AUTO, ESPEAK_PHONEMES_IPA);
                let phonemes =
                    if out.is_null() { String::new() } else { CStr::from_ptr(out).to_string_lossy().into_owned() };
                (phonemes, (start, cursor))
            };
            let start_idx = (next.0 as usize) - (base as usize);
            let at_end = next.1.is_null();
            let end_idx = if at_end { bytes.len() } else { ((next.1 as usize) - (base as usize)).min(bytes.len()) };
            let consumed = String::from_utf8_lossy(&bytes[start_idx.min(end_idx)..end_idx]).into_owned();
            // espeak reads one character past the clause end and keeps it for the next clause; the consumed
            // slice therefore ends with the next clause's first character (unless the text ended).
            let (own, lookahead) = if at_end { (consumed.as_str(), "") } else { split_last_char(&consumed) };
            let mut text = std::mem::take(&mut carried);
            text.push_str(own);
            carried = lookahead.to_string();
            clauses.push(Clause { phonemes, terminator: terminator_of(&text, at_end), text });
        }
        Ok(clauses)
    }
}

impl Api {
    fn set_voice(&mut self, voice: &str) -> Result<()> {
        if self.current_voice.as_deref() == Some(voice) {
            return Ok(());
        }
        let c_voice = CString::new(voice).map_err(|_| Error::EspeakVoice {
            voice: voice.to_string(),
            message: "voice name contains a NUL byte".into(),
        })?;
        // SAFETY: `c_voice` is a valid NUL-terminated string for the duration of the call.
        let status = unsafe { (self.set_voice_by_name)(c_voice.as_ptr()) };
        if status != ENS_OK {
            return Err(Error::EspeakVoice {
                voice: voice.to_string(),
                message: status_message(self.status_message, status),
            });
        }
        self.current_voice = Some(voice.to_string());
        Ok(())
    }
}

/// Split off the last character: `("Hello. ", "T")` from `"Hello. T"`.
fn split_last_char(text: &str) -> (&str, &str) {
    match text.char_indices().last() {
        Some((idx, _)) => (&text[..idx], &text[idx..]),
        None => (text, ""),
    }
}

fn status_message(status_fn: StatusMessageFn, status: u32) -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: the buffer and its length are passed together; espeak writes a NUL-terminated message into it.
    let text = unsafe {
        status_fn(status, buf.as_mut_ptr(), buf.len() - 1);
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    };
    if text.is_empty() {
        format!("espeak-ng status 0x{status:x}")
    } else {
        text
    }
}

fn path_to_cstring(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::EspeakData { path: path.to_path_buf() })
}

/// Recover the clause terminator from the text espeak consumed for a clause, reproducing how espeak classifies
/// it (`readclause.c`): a blank line makes a paragraph break whatever precedes it; otherwise the first mark of
/// the closing run of punctuation counts (`?!` is a question), looking past closing quotes and brackets; an
/// ellipsis (`...` or `…`) and dashes pause without punctuation or end a clause with `;` as espeak does.
/// `at_end` marks the last clause of the text, which ends a sentence even without a mark.
pub fn terminator_of(consumed: &str, at_end: bool) -> Terminator {
    let tail_ws: String = consumed.chars().rev().take_while(|c| c.is_whitespace()).collect();
    if tail_ws.matches('\n').count() >= 2 {
        return Terminator::Break;
    }
    let trimmed = consumed.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '}' | '\u{201D}' | '\u{2019}' | '\u{BB}')
    });
    let run: Vec<char> = {
        let mut run: Vec<char> =
            trimmed.chars().rev().take_while(|c| matches!(c, '.' | '?' | '!' | ',' | ':' | ';' | '\u{2026}')).collect();
        run.reverse();
        run
    };
    let fallback = if at_end { Terminator::Break } else { Terminator::None };
    if run.len() >= 2 && run.iter().all(|&c| c == '.') || run.first() == Some(&'\u{2026}') {
        return fallback;
    }
    match run.first() {
        Some('.') => Terminator::Period,
        Some('?') => Terminator::Question,
        Some('!') => Terminator::Exclamation,
        Some(',') => Terminator::Comma,
        Some(':') => Terminator::Colon,
        Some(';') => Terminator::Semicolon,
        _ if trimmed.ends_with(['\u{2014}', '\u{2013}']) => Terminator::Semicolon,
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators_are_read_past_quotes_and_space() {
        assert_eq!(terminator_of("Hello world. ", false), Terminator::Period);
        assert_eq!(terminator_of("He said \"stop!\" ", false), Terminator::Exclamation);
        assert_eq!(terminator_of("Really?", false), Terminator::Question);
        assert_eq!(terminator_of("What?! ", false), Terminator::Question);
        assert_eq!(terminator_of("first, ", false), Terminator::Comma);
        assert_eq!(terminator_of("note: ", false), Terminator::Colon);
        assert_eq!(terminator_of("one; ", false), Terminator::Semicolon);
        assert_eq!(terminator_of("third \u{2014} ", false), Terminator::Semicolon);
        assert_eq!(terminator_of("Wait... ", false), Terminator::None);
        assert_eq!(terminator_of("no end", false), Terminator::None);
        assert_eq!(terminator_of("no end", true), Terminator::Break);
        assert_eq!(terminator_of("line two.\n\n", false), Terminator::Break);
        assert!(Terminator::Question.ends_sentence());
        assert!(!Terminator::Comma.ends_sentence());
    }
}
