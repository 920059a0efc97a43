"""A tiny model-server stand-in: /metrics in vLLM's format, and every other request echoed
back as JSON with the port that served it."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VLLM_METRICS = """# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="llama"}} {waiting}
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="llama"}} {running}
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{model_name="llama"}} {kv}
"""


class Upstream:
    def __init__(self):
        self.waiting, self.running, self.kv = 0, 0, 0.1
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length", "0")))

            def _send(self, code, data, ctype):
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/metrics":
                    text = VLLM_METRICS.format(waiting=float(outer.waiting), running=float(outer.running), kv=outer.kv)
                    self._send(200, text.encode(), "text/plain; version=0.0.4")
                else:
                    self._echo(b"")

            def do_POST(self):
                self._echo(self._body())

            def _echo(self, body):
                outer.requests.append((self.path, dict(self.headers.items()), body))
                out = {"served_by": outer.port, "model": "llama", "body": body.decode("utf-8", "replace"),
                       "headers": {k.lower(): v for k, v in self.headers.items()}}
                self._send(200, json.dumps(out).encode(), "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
