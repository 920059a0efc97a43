"""The ext_proc protocol, driven by an independent client (grpcio + Envoy's own protos)."""
import json
import queue
import socket
import ssl
import time

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from google.protobuf import struct_pb2

from epp_driver import Epp

CHUNK = 62_000
BACKENDS = {"127.0.0.2:18000", "127.0.0.3:18000", "127.0.0.4:18000"}
CHAT = json.dumps({"model": "llama", "messages": [{"role": "user", "content": "hello"}]}).encode()
FULL_DUPLEX = processing_mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED
BUFFERED = processing_mode_pb2.ProcessingMode.BUFFERED


class Stream:
    """One ext_proc stream: send messages, receive responses, with a 5 s deadline."""

    def __init__(self, address, credentials=None, options=()):
        self.channel = (grpc.secure_channel(address, credentials, options=options)
                        if credentials else grpc.insecure_channel(address))
        self.q = queue.Queue()
        stub = pb_grpc.ExternalProcessorStub(self.channel)
        self.responses = stub.Process(iter(self.q.get, None), timeout=5)

    def send(self, msg):
        self.q.put(msg)

    def recv(self):
        return next(self.responses)

    def close(self):
        self.q.put(None)
        rest = list(self.responses)
        self.channel.close()
        return rest

    def cancel(self):
        self.responses.cancel()
        self.channel.close()


def headers(pairs, eos=False, mode=None, subset=None):
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs])
    req = pb.ProcessingRequest(request_headers=pb.HttpHeaders(headers=hm, end_of_stream=eos))
    if mode is not None:
        req.protocol_config.request_body_mode = mode
        req.protocol_config.response_body_mode = mode
    if subset is not None:
        s = struct_pb2.Struct()
        s.get_or_create_list("x-gateway-destination-endpoint-subset").extend(subset)
        req.metadata_context.filter_metadata["envoy.lb.subset_hint"].CopyFrom(s)
    return req


def body(data, eos):
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=data, end_of_stream=eos))


def resp_headers(pairs, eos=False, served=None):
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs])
    req = pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=hm, end_of_stream=eos))
    if served:
        s = struct_pb2.Struct()
        s["x-gateway-destination-endpoint-served"] = served
        req.metadata_context.filter_metadata["envoy.lb"].CopyFrom(s)
    return req


def resp_body(data, eos):
    return pb.ProcessingRequest(response_body=pb.HttpBody(body=data, end_of_stream=eos))


def set_headers(common):
    return {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}


def streamed_chunks(stream, field):
    """Receives streamed body responses until end_of_stream; returns the chunks."""
    chunks = []
    while True:
        r = stream.recv()
        assert r.WhichOneof("response") == field, r
        sr = getattr(r, field).response.body_mutation.streamed_response
        chunks.append(sr.body)
        if sr.end_of_stream:
            return chunks


def schedule_full_duplex(epp, pairs, data, **kw):
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/chat/completions"), (":method", "POST")] + pairs, **kw))
    s.send(body(data, True))
    r = s.recv()
    return s, r


def test_full_duplex_request_and_response(epp):
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/chat/completions"), (":method", "POST")]))
    s.send(body(CHAT[:7], False))
    s.send(body(CHAT[7:], True))
    r = s.recv()
    assert r.WhichOneof("response") == "request_headers"
    common = r.request_headers.response
    assert common.clear_route_cache
    dest = set_headers(common)["x-gateway-destination-endpoint"]
    assert dest in BACKENDS
    md = r.dynamic_metadata.fields["envoy.lb"].struct_value.fields["x-gateway-destination-endpoint"]
    assert md.string_value == dest
    assert b"".join(streamed_chunks(s, "request_body")) == CHAT
    s.send(resp_headers([(":status", "200"), ("content-type", "application/json")], served=dest))
    assert s.recv().WhichOneof("response") == "response_headers"
    out = json.dumps({"model": "llama", "usage": {"prompt_tokens": 4, "completion_tokens": 2}}).encode()
    s.send(resp_body(out[:10], False))
    s.send(resp_body(out[10:], True))
    assert b"".join(streamed_chunks(s, "response_body")) == out
    assert s.close() == []


def test_large_body_is_streamed_back_in_62000_byte_chunks(epp):
    content = "y" * 220_000
    data = json.dumps({"model": "llama", "messages": [{"role": "user", "content": content}]}).encode()
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/chat/completions")]))
    for i in range(0, len(data), 16384):
        s.send(body(data[i:i + 16384], i + 16384 >= len(data)))
    r = s.recv()
    assert set_headers(r.request_headers.response)["content-length"] == str(len(data))
    chunks = streamed_chunks(s, "request_body")
    assert all(len(c) <= CHUNK for c in chunks) and len(chunks) == -(-len(data) // CHUNK)
    assert b"".join(chunks) == data
    s.cancel()


def test_buffered_mode(epp):
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/chat/completions"), ("x-gateway-model-name-rewrite", "llama-2")], mode=BUFFERED))
    r = s.recv()
    assert r.WhichOneof("response") == "request_headers"
    assert "x-gateway-model-name-rewrite" in r.request_headers.response.header_mutation.remove_headers
    s.send(body(CHAT, True))
    r = s.recv()
    assert r.WhichOneof("response") == "request_body"
    common = r.request_body.response
    assert set_headers(common)["x-gateway-destination-endpoint"] in BACKENDS
    assert json.loads(common.body_mutation.body)["model"] == "llama-2"
    s.send(resp_headers([(":status", "200")]))
    s.recv()
    s.send(resp_body(b'{"model":"llama-2","choices":[]}', True))
    r = s.recv()
    assert r.response_body.response.body_mutation.body == b'{"model":"llama","choices":[]}'
    assert s.close() == []


def test_header_only_request(epp):
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/models"), (":method", "GET")], eos=True))
    r = s.recv()
    hs = set_headers(r.request_headers.response)
    assert hs["x-gateway-destination-endpoint"] in BACKENDS
    assert "x-request-id" in hs
    s.send(resp_headers([(":status", "200")], eos=True))
    assert s.recv().WhichOneof("response") == "response_headers"
    assert s.close() == []


@pytest.mark.parametrize("subset,want", [
    (["127.0.0.3:18000"], {"127.0.0.3:18000"}),
    (["127.0.0.2:1", "127.0.0.4:2"], {"127.0.0.2:18000", "127.0.0.4:18000"}),
])
def test_subset_hint(epp, subset, want):
    for _ in range(6):
        s, r = schedule_full_duplex(epp, [], CHAT, subset=subset)
        assert set_headers(r.request_headers.response)["x-gateway-destination-endpoint"] in want
        s.cancel()


def immediate(epp, pairs, data, path="/v1/chat/completions", **kw):
    s = Stream(epp.address)
    s.send(headers([(":path", path)] + pairs, **kw))
    if data is not None:
        s.send(body(data, True))
    r = s.recv()
    assert r.WhichOneof("response") == "immediate_response", r
    s.cancel()
    return r.immediate_response.status.code, r.immediate_response.body.decode()


def test_error_codes(epp, empty_epp):
    code, text = immediate(epp, [], b"{nope")
    assert code == 400 and text.startswith("inference error: BadRequest - invalid request body")
    assert immediate(epp, [], b'{"messages":[{"role":"user","content":"x"}]}') == (
        400, "inference error: BadRequest - model not found in request body")
    assert immediate(epp, [], CHAT, subset=[]) == (
        503, "inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request")
    # No endpoint has metrics, so the pool is saturated for sheddable (priority < 0) requests.
    code, text = immediate(epp, [("x-gateway-inference-objective", "batch")], CHAT)
    assert code == 429 and text.startswith("inference error: ResourceExhausted - system saturated")
    code, text = immediate(epp, [], json.dumps({"model": "m", "prompt": "z" * 400_000}).encode(), path="/v1/completions")
    assert code == 413 and text.startswith("inference error: PayloadTooLarge")
    assert immediate(empty_epp, [], None, path="/v1/models", eos=True) == (
        500, "inference error: Internal - no pods available in datastore")
    assert immediate(empty_epp, [], CHAT)[0] == 503


def test_objective_priority_is_admitted(epp):
    s, r = schedule_full_duplex(epp, [("x-gateway-inference-objective", "chat")], CHAT)
    assert r.WhichOneof("response") == "request_headers"
    s.cancel()


def test_client_control_headers_are_removed_not_trusted(epp):
    forged = [("x-gateway-destination-endpoint", "6.6.6.6:6"), ("x-gateway-destination-endpoint-served", "6.6.6.6:6"),
              ("x-gateway-destination-endpoint-subset", "6.6.6.6:6"), ("x-gateway-inference-fairness-id", "me")]
    s, r = schedule_full_duplex(epp, forged, CHAT)
    m = r.request_headers.response.header_mutation
    dest = set_headers(r.request_headers.response)["x-gateway-destination-endpoint"]
    assert dest in BACKENDS
    for h in ["x-gateway-destination-endpoint-served", "x-gateway-destination-endpoint-subset",
              "x-gateway-inference-fairness-id"]:
        assert h in m.remove_headers
    opt = [o for o in m.set_headers if o.header.key == "x-gateway-destination-endpoint"][0]
    assert opt.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    s.cancel()


def test_streamed_sse_response_with_model_rewrite(epp):
    data = json.dumps({"model": "llama", "prompt": "p", "stream": True}).encode()
    s = Stream(epp.address)
    s.send(headers([(":path", "/v1/completions"), ("x-gateway-model-name-rewrite", "llama-ft")]))
    s.send(body(data, True))
    s.recv()
    assert json.loads(b"".join(streamed_chunks(s, "request_body")))["model"] == "llama-ft"
    s.send(resp_headers([(":status", "200"), ("content-type", "text/event-stream")]))
    s.recv()
    events = [b'data: {"model":"llama-ft","choices":[{"text":"a"}]}\n\n',
              b'data: {"model":"llama-ft","usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n',
              b"data: [DONE]\n\n"]
    for i, ev in enumerate(events):
        s.send(resp_body(ev, i == len(events) - 1))
        r = s.recv()  # forwarded at once, before the next chunk is sent
        sr = r.response_body.response.body_mutation.streamed_response
        assert sr.body == ev.replace(b"llama-ft", b"llama")
        assert sr.end_of_stream == (i == len(events) - 1)
    assert s.close() == []


def running(epp):
    for line in epp.metrics_text().splitlines():
        if line.startswith('inference_objective_running_requests{model_name="disc"}'):
            return float(line.split()[-1])
    return None


def test_client_disconnect_releases_the_request(epp):
    data = json.dumps({"model": "disc", "messages": [{"role": "user", "content": "x"}]}).encode()
    s, r = schedule_full_duplex(epp, [], data)
    assert running(epp) == 1
    s.cancel()
    deadline = time.monotonic() + 5
    while running(epp) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running(epp) == 0
    s, r = schedule_full_duplex(epp, [], CHAT)  # still serving
    assert r.WhichOneof("response") == "request_headers"
    s.cancel()


def test_out_of_order_message_is_a_stream_error(epp):
    s = Stream(epp.address)
    s.send(resp_body(b"x", True))
    with pytest.raises(grpc.RpcError) as e:
        s.recv()
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    s.cancel()


def test_metrics_names(epp):
    s, _ = schedule_full_duplex(epp, [], CHAT)
    s.cancel()
    text = epp.metrics_text()
    for name in ["inference_objective_request_total", "inference_objective_request_error_total",
                 "inference_objective_request_sizes_bucket", "inference_pool_ready_pods",
                 "inference_pool_per_pod_queue_size", "inference_extension_scheduler_e2e_duration_seconds_bucket",
                 "inference_extension_info", "pointsman_scraper_polls_total"]:
        assert name in text, name


def test_health(epp):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{epp.health_port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for svc in ["liveness", "readiness", "", "envoy.service.ext_proc.v3.ExternalProcessor"]:
            st = stub.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5).status
            assert st == health_pb2.HealthCheckResponse.SERVING, svc


def test_tls_self_signed():
    e = Epp("a=127.0.0.2:18000", secure=True)
    try:
        pem = ssl.get_server_certificate(("127.0.0.1", e.grpc_port))
        creds = grpc.ssl_channel_credentials(root_certificates=pem.encode())
        s = Stream(e.address, creds, options=[("grpc.ssl_target_name_override", "localhost")])
        s.send(headers([(":path", "/v1/chat/completions")]))
        s.send(body(CHAT, True))
        r = s.recv()
        assert set_headers(r.request_headers.response)["x-gateway-destination-endpoint"] == "127.0.0.2:18000"
        s.cancel()
        # A plaintext client is refused.
        with grpc.insecure_channel(e.address) as ch:
            with pytest.raises(grpc.RpcError):
                list(pb_grpc.ExternalProcessorStub(ch).Process(iter([headers([], eos=True)]), timeout=3))
    finally:
        e.stop()
