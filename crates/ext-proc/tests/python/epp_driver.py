"""Starts the built pointsman-epp on free loopback ports and stops it (used by the suites)."""
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[4]
BINARY = os.environ.get("POINTSMAN_EPP", str(REPO / "target" / "debug" / "pointsman-epp"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Epp:
    """A running pointsman-epp; `stop()` ends it (SIGTERM, then SIGKILL after 5 s)."""

    def __init__(self, endpoints, extra=(), secure=False, wait_ready=True):
        self.grpc_port, self.health_port, self.metrics_port = free_port(), free_port(), free_port()
        args = [
            BINARY,
            "--bind-address", "127.0.0.1",
            "--grpc-port", str(self.grpc_port),
            "--grpc-health-port", str(self.health_port),
            "--metrics-port", str(self.metrics_port),
            "--endpoints", endpoints,
            "--secure-serving=" + ("true" if secure else "false"),
            "--log-level", "warn",
            *extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pointsman-epp exited: " + self.proc.stderr.read().decode())
            try:
                self.metrics_text()
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pointsman-epp did not start within 15 s")

    @property
    def address(self):
        return f"127.0.0.1:{self.grpc_port}"

    def metrics_text(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
