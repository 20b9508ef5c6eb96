//! The deployment examples in docs/deploy parse and use the batch flags that exist.

#![allow(clippy::unwrap_used)]

use std::path::Path;

fn doc(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy").join(name)).unwrap()
}

#[test]
fn the_kubernetes_job_is_valid_yaml_and_shards_by_completion_index() {
    let text = doc("kubernetes-indexed-job.yaml");
    let job: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap();
    let script = job["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(script.contains(&format!("--shard \"${{JOB_COMPLETION_INDEX}}/{completions}\"")), "{script}");
    assert!(script.contains("--state") && script.contains("--headless"));
}

#[test]
fn the_slurm_script_shards_by_array_task_id() {
    let text = doc("slurm-array.sh");
    assert!(text.contains("#SBATCH --array="));
    assert!(text.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${shards}\""));
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/slurm-array.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "bash -n");
}

/// Every `--flag` of a command line in a deployment file is one `demod-voice serve --help` or the global flags
/// know.
fn flags_exist(command_line: &str) {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_demod-voice")).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let known = help(&["serve", "--help"]) + &help(&["--help"]);
    for flag in command_line.split_whitespace().filter(|w| w.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        assert!(known.contains(flag), "{flag} is not a flag of demod-voice serve");
    }
}

#[test]
fn the_systemd_unit_runs_serve_with_flags_that_exist() {
    let text = doc("demod-voice.service");
    let exec = text.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    assert!(exec.contains(" serve ") && exec.contains("--wyoming"), "{exec}");
    flags_exist(exec);
    assert!(text.contains("KillSignal=SIGTERM"));
}

#[test]
fn the_home_assistant_guide_uses_flags_that_exist() {
    let text = doc("home-assistant.md");
    let line = text.lines().find(|l| l.contains("demod-voice serve")).unwrap();
    flags_exist(line.trim());
    assert!(text.contains("Wyoming Protocol") && text.contains("10200"));
}
