"""Benchmark: how much CPU and memory the exporter needs for N targets at a given interval.

Runs moto's S3/STS server as a separate process (IAM auth off: we measure the exporter, not the emulator),
starts the exporter in this process with N targets, lets it run for a while, and prints figures:
cycles completed vs. expected, exporter CPU (this process only), peak RSS, and /metrics scrape time and size.

    .venv/bin/python benchmarks/scale.py --targets 1000 --interval 60 --duration 180
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import boto3

from exporter.app import start_exporter
from exporter.config import parse_config
from exporter.logs import setup_logging


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(endpoint: str, targets: int, interval: float, concurrency: int) -> dict[str, Any]:
    keys = {"source": "static", "access_key_id": {"value": "AKIABENCHMARK0000000"},
            "secret_access_key": {"value": "benchmark"}}
    components = ["compactor", "store", "receive", "rule", "sidecar"]
    return {
        "global": {"interval": f"{interval}s", "timeout": "10s", "jitter": f"{interval * 0.9}s",
                   "concurrency": concurrency, "janitor": {"identity": keys}},
        "buckets": {"b": {"objstore": {"type": "S3", "config": {
            "bucket": "thanos", "endpoint": endpoint, "insecure": True, "region": "us-east-1"}}}},
        "targets": [{"name": f"ns{i // 50}/thanos-{components[i % 5]}-{i}", "component": components[i % 5],
                     "bucket": "b", "identity": keys} for i in range(targets)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    setup_logging("error")

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a",
                     aws_secret_access_key="b").create_bucket(Bucket="thanos")
        cfg = parse_config(config(f"127.0.0.1:{port}", args.targets, args.interval, args.concurrency))
        cpu0 = time.process_time()
        start = time.monotonic()
        exporter = start_exporter(cfg, "127.0.0.1:0")
        time.sleep(args.duration)
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu0
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.web.port}/metrics", timeout=30) as answer:
            body = answer.read()
        scrape = time.perf_counter() - t0
        snap = exporter.store.snapshot()
        exporter.stop()
    finally:
        moto.terminate()
        moto.wait(10)
    cycles = sum(count for (_, op), count in snap.probes_total.items() if op == "exists")
    expected = args.targets * elapsed / args.interval
    failures = sum(snap.failures_total.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"targets={args.targets} interval={args.interval:.0f}s duration={elapsed:.0f}s "
          f"concurrency={args.concurrency}")
    print(f"cycles completed={cycles} (steady-state expectation ~{expected:.0f}, first runs spread over the jitter)")
    print(f"targets with >=1 cycle={len(snap.latest)}/{args.targets} probe failures={failures}")
    print(f"exporter CPU={cpu:.1f}s over {elapsed:.0f}s = {100 * cpu / elapsed:.0f}% of one core "
          f"({1000 * cpu / max(cycles, 1):.1f} ms per target cycle)")
    print(f"peak RSS={rss_mb:.0f} MiB; /metrics {len(body) / 1024:.0f} KiB in {1000 * scrape:.0f} ms")


if __name__ == "__main__":
    main()
