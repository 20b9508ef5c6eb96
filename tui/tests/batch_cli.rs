//! `batch`: the old tool's CSV, crash safety under SIGKILL, sharding, and bad manifests, through the real binary
//! with the real voice.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    common::ensure_assets();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    cmd.arg("--offline").env("XDG_CONFIG_HOME", "/nonexistent-config");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn frames(path: &Path) -> usize {
    let reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{} is not a complete WAV: {e}", path.display()));
    let expected = reader.duration() as usize;
    // Reading every sample proves the data chunk is as long as the header says.
    let read = reader.into_samples::<i16>().map(Result::unwrap).count();
    assert_eq!(read, expected, "{} is truncated", path.display());
    read
}

#[test]
fn the_old_tools_csv_runs_unchanged_and_honours_the_speaker_column() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    std::fs::copy(reference, dir.path().join("ref.wav")).unwrap();
    std::fs::write(
        dir.path().join("jobs.csv"),
        "reference,text,output,language,speaker\n\
         ,Hello from the batch runner.,out/plain.wav,en,0\n\
         ref.wav,\"A cloned line, with a comma.\",out/clone.wav,en,\n\
         ,This speaker does not exist.,out/bad-speaker.wav,en,7\n",
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let out = bin()
        .args(["batch", "--jobs", "2", "--report"])
        .arg(&report)
        .arg(dir.path().join("jobs.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one job fails: {}", stderr(&out));
    assert!(frames(&dir.path().join("out/plain.wav")) > 22050 / 2);
    assert!(frames(&dir.path().join("out/clone.wav")) > 22050 / 2);
    // Speaker 7 is honoured, and refused: this voice has one speaker.
    assert!(!dir.path().join("out/bad-speaker.wav").exists());
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!((report["done"].as_u64(), report["failed"].as_u64()), (Some(2), Some(1)));
    let failure = &report["failures"][0];
    assert_eq!(failure["row"], 3);
    assert!(failure["problem"].as_str().unwrap().contains("speaker `7`"), "{failure}");
}

fn numbered_manifest(dir: &Path, rows: usize) -> PathBuf {
    let mut csv = String::from("text,output\n");
    for idx in 0..rows {
        csv.push_str(&format!("Line number {idx}.,out/line-{idx:03}.wav\n"));
    }
    let path = dir.join("lines.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn journal_outputs(manifest: &Path) -> HashSet<String> {
    demod_voice_core::batch::read_journal(&demod_voice_core::batch::journal_path(manifest, None, None))
        .into_iter()
        .map(|e| e.output)
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_redoes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = numbered_manifest(dir.path(), 24);
    let mut seed = 0x1234_5678u64;
    let mut rerun_jobs = Vec::new();
    for _ in 0..20 {
        let before = journal_outputs(&manifest);
        let child = bin()
            .args(["batch", "--jobs", "2", "--json-events", "-q"])
            .arg(&manifest)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(300 + seed % 1500));
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let output = child.wait_with_output().unwrap();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if event["event"] == "started" {
                let output = event["output"].as_str().unwrap().to_string();
                assert!(!before.contains(&output), "{output} was journaled and ran again");
                rerun_jobs.push(output);
            }
        }
    }
    let out = bin().args(["batch", "--jobs", "2"]).arg(&manifest).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let outputs: Vec<PathBuf> =
        std::fs::read_dir(dir.path().join("out")).unwrap().flatten().map(|e| e.path()).collect();
    let names: Vec<String> = outputs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(outputs.len(), 24, "exactly the 24 outputs and no leftovers: {names:?}");
    for path in &outputs {
        assert!(frames(path) > 1000);
    }
    assert_eq!(journal_outputs(&manifest).len(), 24);
    assert!(!rerun_jobs.is_empty());
}

#[test]
fn an_output_a_crashed_run_wrote_before_journaling_it_is_redone_but_a_strangers_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = numbered_manifest(dir.path(), 2);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    // line-000: the crash window (the run had begun it: a pending line); line-001: a file nobody journaled.
    std::fs::write(dir.path().join("out/line-000.wav"), b"cut short by a crash").unwrap();
    std::fs::write(dir.path().join("out/line-001.wav"), b"someone else's").unwrap();
    let journal = demod_voice_core::batch::journal_path(&manifest, None, None);
    std::fs::write(
        &journal,
        "{\"output\":\"out/line-000.wav\",\"sha256\":\"\",\"audio_seconds\":0.0,\"row\":1,\"pending\":true}\n",
    )
    .unwrap();
    let out = bin().args(["batch"]).arg(&manifest).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(frames(&dir.path().join("out/line-000.wav")) > 1000, "the begun job was redone");
    assert_eq!(std::fs::read(dir.path().join("out/line-001.wav")).unwrap(), b"someone else's");
    let done = journal_outputs(&manifest);
    assert!(done.contains("out/line-000.wav") && !done.contains("out/line-001.wav"), "{done:?}");
}

#[test]
fn four_shards_cover_a_manifest_exactly_once_and_match_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let single_dir = dir.path().join("single");
    let shard_dir = dir.path().join("sharded");
    std::fs::create_dir_all(&single_dir).unwrap();
    std::fs::create_dir_all(&shard_dir).unwrap();
    let single = numbered_manifest(&single_dir, 200);
    let sharded = numbered_manifest(&shard_dir, 200);
    let still = ["--noise-scale", "0", "--noise-w", "0"];
    let out = bin().args(["batch", "-q"]).args(still).arg(&single).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let children: Vec<_> = (0..4)
        .map(|k| {
            bin()
                .args(["batch", "-q", "--shard", &format!("{k}/4")])
                .args(still)
                .arg(&sharded)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.join("out"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&shard_dir).len(), 200);
    assert_eq!(names(&single_dir), names(&shard_dir));
    // With the noise scales at zero synthesis is deterministic: every file is byte for byte the single run's.
    for name in names(&single_dir) {
        let (a, b) = (single_dir.join("out").join(&name), shard_dir.join("out").join(&name));
        frames(&b);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{name}");
    }
    // The shard journals merge into one report with every output once.
    let journals: Vec<PathBuf> = (0..4)
        .map(|k| demod_voice_core::batch::journal_path(&sharded, None, Some(format!("{k}/4").parse().unwrap())))
        .collect();
    let out = bin().args(["batch", "report", "--json"]).args(&journals).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outputs"], 200);
    assert_eq!(report["duplicates"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_manifests_are_reported_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    // A BOM, CRLF line ends, quoted fields with commas and newlines, and every kind of bad row.
    let mut csv = b"\xef\xbb\xbftext,output,reference\r\n\"Fine, with a comma.\",ok.wav,\r\n\"Two\r\nlines.\",two.wav,\r\n,empty.wav,\r\nNo reference here.,ref.wav,missing.wav\r\nBad \xff\xfe bytes.,bytes.wav,\r\n".to_vec();
    csv.extend_from_slice(b"Same output.,ok.wav,\r\n");
    let manifest = dir.path().join("mixed.csv");
    std::fs::write(&manifest, &csv).unwrap();
    let out = bin().args(["batch", "--check"]).arg(&manifest).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "row 1, column `output`",
        "row 3, column `text`",
        "row 4, column `reference`",
        "row 5, column `text`: is not UTF-8",
        "row 6, column `output`",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
    // Running writes the valid row only; the invalid ones are reported and nothing is written for them.
    let out = bin().args(["batch"]).arg(&manifest).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(dir.path().join("two.wav").exists());
    for name in ["ok.wav", "empty.wav", "ref.wav", "bytes.wav"] {
        assert!(!dir.path().join(name).exists(), "{name}");
    }
    // Only invalid rows: exit 2. A missing column, an unreadable manifest: exit 2.
    std::fs::write(dir.path().join("bad.csv"), "text,output\n,a.wav\n,b.wav\n").unwrap();
    std::fs::write(dir.path().join("columns.csv"), "words,file\nhello,a.wav\n").unwrap();
    for (name, needle) in [("bad.csv", "no valid rows"), ("columns.csv", "`text` column"), ("nope.csv", "nope.csv")] {
        let out = bin().arg("batch").arg(dir.path().join(name)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{name}: {}", stderr(&out));
    }
    // --strict refuses to run a manifest with any invalid row.
    let out = bin().args(["batch", "--strict"]).arg(&manifest).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn yaml_manifests_with_defaults_and_an_engine_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jobs.yaml"),
        "defaults:\n  noise_scale: 0\n  noise_w: 0\njobs:\n  - text: The same words twice.\n    output: plain.wav\n  - text: The same words twice.\n    output: through.wav\n    engine: passthrough\n  - text: The same words twice.\n    output: slow.wav\n    length_scale: 1.5\n",
    )
    .unwrap();
    let out = bin().args(["batch", "--jobs", "2"]).arg(dir.path().join("jobs.yaml")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| demod_voice_core::wav::read_wav_mono(&dir.path().join(name)).unwrap().0;
    let (plain, through, slow) = (read("plain.wav"), read("through.wav"), read("slow.wav"));
    // Passthrough conversion through the engine gives the speech back, aligned and as long.
    assert_eq!(plain.len(), through.len());
    let worst = plain.iter().zip(&through).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 2.0 / 32768.0, "passthrough differs by {worst}");
    // A per-row scale beats the defaults.
    assert!(slow.len() as f32 > plain.len() as f32 * 1.3);
}

#[test]
fn impossible_timeouts_and_worker_counts_are_usage_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.csv"), "text,output\nHello.,a.wav\n").unwrap();
    for (flag, value) in [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "0"),
        ("--timeout", "1e18"),
        ("--jobs", "0"),
        ("--jobs", "4000000000"),
    ] {
        let out = bin().current_dir(dir.path()).args(["batch", "m.csv", "--headless", flag, value]).output().unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {text}");
        assert!(text.contains(flag) && text.lines().next().is_some_and(|l| l.starts_with("error:")), "{text}");
        assert!(!dir.path().join("a.wav").exists());
    }
}

/// Hardening: manifest paths (output, reference, voice files) resolve inside the manifest's folder; a row that
/// points elsewhere is an invalid row and the others run. `--allow-outside-paths` lifts it, `--output-dir` moves
/// the outputs.
#[test]
fn rows_pointing_outside_the_manifest_folder_are_refused_unless_allowed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    let outside = root.path().join("elsewhere.wav");
    let manifest = format!(
        "text,output,profile\n\
         Fine.,sub/../fine.wav,\n\
         Up.,../escape.wav,\n\
         Absolute.,{},\n\
         Named.,named.wav,../../etc/x\n",
        outside.display()
    );
    std::fs::write(dir.join("m.csv"), manifest).unwrap();
    let out = bin().current_dir(&dir).args(["batch", "m.csv", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("row 2, column `output`") && text.contains("--allow-outside-paths"), "{text}");
    assert!(text.contains("row 3, column `output`"), "{text}");
    assert!(text.contains("row 4, column `profile`") && text.contains("is a path"), "{text}");
    assert!(!text.contains("row 1"), "{text}");
    let out = bin().current_dir(&dir).args(["batch", "m.csv", "--check", "--allow-outside-paths"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // The valid row runs; the refused ones create nothing outside.
    let out = bin().current_dir(&dir).args(["batch", "m.csv", "--headless", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(dir.join("fine.wav").is_file());
    assert!(!root.path().join("escape.wav").exists() && !outside.exists());

    // --output-dir: outputs resolve (and are contained) there.
    std::fs::write(dir.join("o.csv"), "text,output\nMoved.,moved.wav\n").unwrap();
    let out =
        bin().current_dir(&dir).args(["batch", "o.csv", "--headless", "-q", "--output-dir", "out"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("out/moved.wav").is_file() && !dir.join("moved.wav").exists());
}

/// Hardening: two runs on one manifest are locked; the second says who holds it.
#[test]
fn a_second_run_on_a_running_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.txt"), "One sentence.\n").unwrap();
    let journal = demod_voice_core::batch::journal_path(&dir.path().join("m.txt"), None, None);
    let held = demod_voice_core::batch::BatchLock::acquire(&journal).unwrap();
    let out = bin().current_dir(dir.path()).args(["batch", "m.txt", "--headless", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("already running") && text.contains(&format!("pid {}", std::process::id())), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    drop(held);
}

#[test]
fn an_unknown_manifest_type_is_a_usage_error_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jobs.xlsx"), b"PK\x03\x04").unwrap();
    let out = bin().current_dir(dir.path()).args(["batch", "jobs.xlsx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("jobs.xlsx") && text.contains("unknown manifest type") && text.contains(".csv"), "{text}");
}
