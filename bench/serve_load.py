#!/usr/bin/env python3
"""Load test of an OpenAI-compatible server on the loopback (not run in CI).

    bench/serve_load.py [--clients 64] [--seconds 60] [--max-tokens 64]
                        [--port P | --start [--llama-server BIN] [--server-arg ARG ...]]

--start runs `build/plumb serve` on SmolLM2 itself (a free port, --parallel = clients, -c per
slot) and stops it at the end; with --llama-server BIN it runs that llama-server instead on the
same model, slots and context per slot (-c is its total, so slots x ctx), on 2 threads like
plumb on this machine's cores (--threads). Without --start it talks to a server already
listening on 127.0.0.1:PORT. Each client streams chat completions back to back until the time
is up; no request starts after it. Prints failed requests, generated tokens/s summed over all
clients, time to first token p50/p99, and the server's resident memory after warm-up and at the
end (with --start). Only 127.0.0.1 is ever contacted, and the run is bounded by --seconds (plus
the requests in flight then).
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

import openai

TOPICS = ["the sea", "a red bicycle", "mountains", "a lost key", "the moon", "bread", "a library", "trains"]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return float("nan")
    return float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc, port, what):
    """Polls GET /health until 200 (llama-server answers 503 while it loads)."""
    import http.client
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become healthy")


def start_server(args):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model = subprocess.run([os.path.join(repo, "scripts/fetch-model"), "smollm2"], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    slots = args.parallel or args.clients
    if args.llama_server:
        port = free_port()
        proc = subprocess.Popen([args.llama_server, "-m", model, "--host", "127.0.0.1", "--port", str(port),
                                 "--parallel", str(slots), "-c", str(args.ctx * slots), "-t", str(args.threads),
                                 "--no-webui", "--log-disable", *args.server_arg],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(proc, port, "llama-server")
        return proc, port
    proc = subprocess.Popen([os.path.join(repo, "build/plumb"), "serve", "-m", model, "--port", "0",
                             "--parallel", str(slots), "-c", str(args.ctx), "-t", str(args.threads),
                             *args.server_arg],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(m.group(1))
    raise RuntimeError("plumb serve did not start")


def client_loop(idx, port, deadline, max_tokens, results, lock):
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=300)
    n = 0
    while time.time() < deadline:
        topic = TOPICS[(idx + n) % len(TOPICS)]
        n += 1
        t0 = time.time()
        ttft, tokens, ok, got_usage = None, 0, True, False
        try:
            stream = c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"Write a few sentences about {topic}."}],
                max_tokens=max_tokens, temperature=0.8, seed=idx * 1000 + n, stream=True,
                stream_options={"include_usage": True})
            for ch in stream:
                if ch.choices and ch.choices[0].delta.content and ttft is None:
                    ttft = time.time() - t0
                if ch.usage:
                    tokens, got_usage = ch.usage.completion_tokens, True
            if not got_usage:
                raise RuntimeError("no usage chunk (completion_tokens) at the end of the stream")
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            ok = False
            with lock:
                results["errors"].append(f"{repr(e)[:200]} (cause: {repr(e.__cause__)[:200]})")
        with lock:
            results["requests"] += 1
            if ok:
                results["tokens"] += tokens
                if ttft is not None:
                    results["ttft"].append(ttft)
            else:
                results["failed"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--start", action="store_true", help="start build/plumb serve on SmolLM2 itself")
    ap.add_argument("--llama-server", default="", help="with --start: run this llama-server binary instead")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="with --start: the server's threads")
    ap.add_argument("--server-arg", action="append", default=[], help="with --start: one more server argument")
    ap.add_argument("--parallel", type=int, default=0, help="with --start: slots (default: --clients)")
    ap.add_argument("--ctx", type=int, default=1024, help="with --start: context per slot")
    args = ap.parse_args()
    if args.clients < 1 or args.clients > 256 or args.seconds <= 0 or args.seconds > 600:
        sys.exit("--clients 1..256 and --seconds up to 600")

    proc, port = start_server(args) if args.start else (None, args.port)
    results = {"requests": 0, "failed": 0, "tokens": 0, "ttft": [], "errors": []}
    lock = threading.Lock()
    start = time.time()
    deadline = start + args.seconds
    threads = [threading.Thread(target=client_loop, args=(i, port, deadline, args.max_tokens, results, lock))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    rss_warm = None
    if proc:
        time.sleep(min(10, args.seconds / 3))
        rss_warm = rss_mb(proc.pid)
    for t in threads:
        t.join()
    elapsed = time.time() - start
    rss_end = rss_mb(proc.pid) if proc else None
    if proc:
        proc.terminate()
        proc.wait(timeout=30)

    ttft = sorted(results["ttft"])
    def pct(p):
        return ttft[min(len(ttft) - 1, int(p / 100 * len(ttft)))] if ttft else float("nan")
    print(f"clients {args.clients}, {elapsed:.1f} s, requests {results['requests']}, failed {results['failed']}")
    print(f"generated tokens {results['tokens']}, {results['tokens'] / elapsed:.1f} tokens/s summed")
    print(f"time to first token p50 {pct(50):.3f} s, p99 {pct(99):.3f} s"
          + (f", mean {statistics.mean(ttft):.3f} s" if ttft else ""))
    if proc:
        print(f"server RSS after warm-up {rss_warm:.0f} MB, at the end {rss_end:.0f} MB")
    for e in results["errors"][:5]:
        print("error:", e)
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
