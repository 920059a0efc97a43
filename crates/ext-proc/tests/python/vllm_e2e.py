"""Envoy → pointsman-epp → two real vLLM servers (tiny model). Checks that with one server
loaded (queue) and one idle, new requests go to the idle one, and that a repeated long prompt
goes back to the server that has its prefix. Usage: vllm_e2e.py MODEL_DIR."""
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from envoy_config import envoy_config
from epp_driver import Epp, free_port

MODEL = sys.argv[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", VLLM_CPU_KVCACHE_SPACE="1")


def start_vllm(port):
    return subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL,
                             "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
                             "--max-model-len", "512", "--dtype", "float32", "--enforce-eager",
                             "--max-num-seqs", "2"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(url, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"{url} not up in {seconds} s")


def post(url, payload, timeout=120):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.headers.get("x-upstream-host"), json.loads(r.read())


def waiting(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r"^vllm:num_requests_waiting\{[^}]*\} ([0-9.e+]+)", text, re.M)
    return float(m.group(1)) if m else 0.0


def main():
    pa, pb = free_port(), free_port()
    servers = [start_vllm(pa), start_vllm(pb)]
    procs = []
    try:
        for p in (pa, pb):
            wait_http(f"http://127.0.0.1:{p}/health", 300)
        epp = Epp(f"a=127.0.0.1:{pa},b=127.0.0.1:{pb}", extra=["--refresh-metrics-interval", "50ms"])
        procs.append(epp)
        listen, admin = free_port(), free_port()
        cfg = pathlib.Path(tempfile.mkdtemp()) / "envoy.yaml"
        text = envoy_config(admin, listen, epp.grpc_port).replace(
            "              - match: {prefix: \"/\"}\n",
            "              - match: {prefix: \"/\"}\n                response_headers_to_add: [{header: {key: x-upstream-host, value: \"%UPSTREAM_HOST%\"}}]\n")
        cfg.write_text(text)
        envoy_bin = str(pathlib.Path(sys.executable).parent / "envoy")
        envoy = subprocess.Popen([envoy_bin, "-c", str(cfg), "-l", "warning", "--concurrency", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{admin}/ready", 30)
        gw = f"http://127.0.0.1:{listen}/v1/completions"

        # 1. Load server a directly (bypassing the gateway) until its queue is non-empty.
        load = concurrent.futures.ThreadPoolExecutor(8)
        busy = [load.submit(post, f"http://127.0.0.1:{pa}/v1/completions",
                            {"model": "tiny", "prompt": f"load {i}", "max_tokens": 400, "ignore_eos": True}, 600)
                for i in range(8)]
        deadline = time.monotonic() + 60
        while waiting(pa) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert waiting(pa) >= 1, "server a never queued"
        time.sleep(0.3)
        hosts = [post(gw, {"model": "tiny", "prompt": f"new request {i}", "max_tokens": 2})[0] for i in range(4)]
        print("while a is loaded, requests went to", hosts)
        assert all(h == f"127.0.0.1:{pb}" for h in hosts), hosts
        for f in busy:
            f.result()

        # 2. Prefix affinity: a long prompt, repeated, returns to the server that has its prefix.
        long_prompt = "the quick brown fox jumps over the lazy dog " * 8
        first, _ = post(gw, {"model": "tiny", "prompt": long_prompt, "max_tokens": 2})
        again = [post(gw, {"model": "tiny", "prompt": long_prompt + f" {i}", "max_tokens": 2})[0] for i in range(4)]
        print("long prompt first went to", first, "then", again)
        assert all(h == first for h in again), (first, again)
        print("vLLM end-to-end: OK")
        envoy.terminate()
        envoy.wait(timeout=10)
    finally:
        for p in procs:
            p.stop()
        for s in servers:
            s.terminate()
            try:
                s.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.kill()


if __name__ == "__main__":
    main()
