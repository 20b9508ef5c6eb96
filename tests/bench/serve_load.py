#!/usr/bin/env python3
"""Load benchmark: `demod-voice serve` next to piper-tts's own HTTP server, same voice, same sentences, loopback.

For 1, 4 and 16 concurrent clients, each sending one sentence per request (sentences of
tests/bench/paragraph.txt, round robin), it reports throughput (audio seconds per wall second), p50/p99 time to
first byte, and each server's peak resident memory (VmHWM, with its children). Standard library only; bounded
(REQUESTS per level, 60 s timeouts).

    python3 -m venv /tmp/piper-venv && /tmp/piper-venv/bin/pip install piper-tts==1.8.0 flask
    python3 tests/bench/serve_load.py --demod target/release/demod-voice --piper-python /tmp/piper-venv/bin/python

The model is the default voice (`demod-voice setup` installs it). Both servers get the same cores: demod-voice
with its defaults (sessions = cores, one thread each), piper with its defaults (one voice, Flask's threads).
"""
import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
LEVELS = (1, 4, 16)
REQUESTS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no server on port {port} after {seconds} s")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the process and its children, MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            total += int(match.group(1)) if match else 0
        except OSError:
            pass
    return total / 1024


def one_request(port: int, path: str, body: dict) -> tuple:
    """(seconds to first byte, seconds in all, audio seconds)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    first = response.read(1)
    ttfb = time.monotonic() - started
    rest = response.read()
    total = time.monotonic() - started
    data = first + rest
    if response.status != 200 or len(data) < 44:
        raise SystemExit(f"{path}: {response.status} {data[:200]!r}")
    rate = int.from_bytes(data[24:28], "little")
    audio = (len(data) - 44) / 2 / rate
    return ttfb, total, audio


def level(port: int, path: str, make_body, sentences: list, clients: int) -> dict:
    results = []
    lock = threading.Lock()
    counter = iter(range(REQUESTS))

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            r = one_request(port, path, make_body(sentences[i % len(sentences)]))
            with lock:
                results.append(r)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ttfbs = sorted(r[0] for r in results)
    p99 = ttfbs[min(len(ttfbs) - 1, int(round(0.99 * (len(ttfbs) - 1))))]
    return {
        "throughput": sum(r[2] for r in results) / wall,
        "p50_ttfb": statistics.median(ttfbs),
        "p99_ttfb": p99,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demod", default="target/release/demod-voice")
    parser.add_argument("--piper-python", required=True)
    parser.add_argument("--global-args", default="", help="global demod-voice arguments (e.g. --threads 2)")
    parser.add_argument("--serve-args", default="", help="more arguments for demod-voice serve (e.g. --sessions 2)")
    parser.add_argument("--model", default=str(Path.home() / ".local/share/demod-voice/voices/en_US-joe-medium.onnx"))
    args = parser.parse_args()

    text = (HERE / "paragraph.txt").read_text(encoding="utf-8")
    sentences = [s.strip() + "." for s in text.replace("\n", " ").split(".") if len(s.strip()) > 3]

    demod_port, piper_port = free_port(), free_port()
    demod = subprocess.Popen(
        [args.demod, "-q", *args.global_args.split(), "serve", "--http", f"127.0.0.1:{demod_port}", "--max-queue", "64",
         *args.serve_args.split()],
        stderr=subprocess.DEVNULL,
    )
    piper = subprocess.Popen(
        [args.piper_python, "-m", "piper.http_server", "-m", args.model, "--host", "127.0.0.1",
         "--port", str(piper_port)],
        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    try:
        wait_ready(demod_port, "/health")
        wait_ready(piper_port, "/voices")
        servers = {
            "demod-voice serve": (demod_port, "/v1/audio/speech", lambda s: {"input": s, "response_format": "wav"},
                                  demod.pid),
            "piper-tts http_server": (piper_port, "/synthesize", lambda s: {"text": s}, piper.pid),
        }
        # Warm both (first requests load sessions and caches).
        for port, path, body, _ in servers.values():
            for s in sentences[:4]:
                one_request(port, path, body(s))
        print(f"{REQUESTS} requests of one sentence per level, {os.cpu_count()} CPUs, voice {Path(args.model).name}\n")
        print("| server | clients | audio s / wall s | p50 first byte | p99 first byte | peak memory |")
        print("|---|---|---|---|---|---|")
        for clients in LEVELS:
            for name, (port, path, body, pid) in servers.items():
                r = level(port, path, body, sentences, clients)
                print(f"| {name} | {clients} | {r['throughput']:.1f} | {r['p50_ttfb'] * 1000:.0f} ms | "
                      f"{r['p99_ttfb'] * 1000:.0f} ms | {peak_rss_mb(pid):.0f} MB |", flush=True)
    finally:
        for p in (demod, piper):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
