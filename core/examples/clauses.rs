//! Print espeak-ng's clauses for each line of standard input as JSON (used to compare with Piper's bridge).
use demod_voice_core::{assets, espeak::Espeak};
use std::io::BufRead;
fn main() {
    let dirs = assets::Dirs::from_env();
    let found = assets::find_espeak(&dirs, |k| std::env::var_os(k).map(Into::into))
        .unwrap()
        .unwrap();
    let e = Espeak::get_or_load(&found.paths).unwrap();
    for line in std::io::stdin().lock().lines() {
        let text = line.unwrap().replace("\\n", "\n");
        let clauses: Vec<(String, &str, bool)> = e
            .clauses("en-us", &text)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.phonemes,
                    c.terminator.as_str(),
                    c.terminator.ends_sentence(),
                )
            })
            .collect();
        println!("{}", serde_json::to_string(&clauses).unwrap());
    }
}
