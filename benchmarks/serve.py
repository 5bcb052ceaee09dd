"""A bounded load test of `genlab serve` on loopback: requests per second and latency of decode
and sample from a few concurrent clients, on the demo's VAE.

    python benchmarks/serve.py [--clients 4] [--decodes 400] [--samples 80] [--threads 1]

It trains the demo's VAE on the embedded digits (its settings, 20 epochs) into
benchmarks/runs/serve-vae unless that run exists, starts `genlab serve` on 127.0.0.1 in another
process, sends a fixed number of requests from each of the clients (threads, one connection each)
and stops; the server is stopped at the end. Writes benchmarks/results/serve.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, print_table, write_results  # noqa: E402

import genlab  # noqa: E402
from genlab.demo import DEMO_MODELS  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trained_vae() -> Path:
    out = ROOT / "benchmarks" / "runs" / "serve-vae"
    if not (out / "trainer_state.json").exists():
        entry = next(e for e in DEMO_MODELS if e.name == "vae")
        genlab.train("vae", "digits", out_dir=out, progress=False, model_settings=entry.settings,
                     **{**entry.train, "epochs": 20, "snapshot_every": -1})
    return out


def start_server(run: Path, port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/info")
            info = json.loads(connection.getresponse().read())
            return process, info
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start:\n{process.stdout.read()}")


def load(port: int, path: str, bodies: list[dict], clients: int) -> dict:
    """Each client sends its share of ``bodies`` one after another on its own connection."""
    latencies: list[float] = []
    failures = []
    lock = threading.Lock()

    def client(share: list[dict]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in share:
            t0 = time.perf_counter()
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    failures.append(response.status)

    shares = [bodies[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(bodies), "clients": clients, "failures": len(failures), "seconds": round(wall, 3),
            "requests_per_s": round(len(bodies) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--decodes", type=int, default=400, help="decode requests in all")
    parser.add_argument("--samples", type=int, default=80, help="sample requests (16 images each) in all")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    args = parser.parse_args()

    run = trained_vae()
    port = free_port()
    process, info = start_server(run, port, args.threads)
    try:
        rng = np.random.default_rng(0)
        width = info["latent_dim"]
        decodes = [{"z": rng.standard_normal(width).tolist()} for _ in range(args.decodes)]
        samples = [{"n": 16, "seed": i} for i in range(args.samples)]
        load(port, "/api/decode", decodes[:20], args.clients)  # warm-up, not counted
        rows = {"decode": load(port, "/api/decode", decodes, args.clients),
                "sample (16 images)": load(port, "/api/sample", samples, args.clients)}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/api/stats")
        stats = json.loads(connection.getresponse().read())
    finally:
        process.terminate()
        process.wait(timeout=20)
    mean_batch = stats["decode_requests"] / max(stats["decode_batches"], 1)
    print_table(["endpoint", "requests", "clients", "req/s", "p50 ms", "p99 ms", "max ms", "failures"],
                [[name, r["requests"], r["clients"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["max_ms"],
                  r["failures"]] for name, r in rows.items()])
    print(f"decode requests per model call (batching), warm-up included: {mean_batch:.2f}")
    path = write_results("serve", {
        "benchmark": "genlab serve on loopback: the demo's VAE (8-d code, 8x8 digits), fixed request counts",
        "command": "python benchmarks/serve.py " + " ".join(sys.argv[1:]),
        "machine": {**machine(), "server_torch_threads": args.threads}, "model": info["name"],
        "results": rows, "decode_requests_per_model_call": round(mean_batch, 2)})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
