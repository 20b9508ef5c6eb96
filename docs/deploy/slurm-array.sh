#!/usr/bin/env bash
# Run a batch manifest as a Slurm job array: task $SLURM_ARRAY_TASK_ID takes shard K of N.
# Every row lands in exactly one shard (a stable hash of its output path); each task keeps its own journal in
# $STATE, so requeued tasks resume where they stopped. The container image comes from the flake:
#
#   nix build .#dockerImage && docker load < result && apptainer build demod-voice.sif docker-daemon://demod-voice:0.1.0
#   sbatch docs/deploy/slurm-array.sh /shared/project/manifest.csv
#   demod-voice batch report /shared/project/state/*.journal.jsonl
#
#SBATCH --job-name=demod-voice
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --requeue
set -euo pipefail

manifest="${1:?usage: sbatch slurm-array.sh MANIFEST}"
shards="${SLURM_ARRAY_TASK_COUNT:-8}"
workdir="$(dirname "$manifest")"
state="$workdir/state"
mkdir -p "$state"

apptainer exec --bind "$workdir:/workspace" demod-voice.sif \
    demod-voice batch "/workspace/$(basename "$manifest")" --headless --jobs "$SLURM_CPUS_PER_TASK" \
    --shard "${SLURM_ARRAY_TASK_ID}/${shards}" --state /workspace/state \
    --report "/workspace/state/report-${SLURM_ARRAY_TASK_ID}.json"
