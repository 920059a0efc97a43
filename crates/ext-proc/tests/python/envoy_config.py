"""Writes an Envoy config of the reference's shape (ext_proc FULL_DUPLEX_STREAMED in front of an
ORIGINAL_DST cluster routed by x-gateway-destination-endpoint)."""

TEMPLATE = """admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ing
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: original_dst, timeout: 30s}}
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service: {{envoy_grpc: {{cluster_name: epp}}, timeout: 10s}}
              failure_mode_allow: false
              message_timeout: 30s
              processing_mode:
                request_header_mode: SEND
                response_header_mode: SEND
                request_body_mode: {mode}
                response_body_mode: {mode}
                request_trailer_mode: {trailers}
                response_trailer_mode: {trailers}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: epp
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: epp
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {epp}}}}}}}}}]}}]
  - name: original_dst
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
    original_dst_lb_config:
      use_http_header: true
      http_header_name: x-gateway-destination-endpoint
"""


def envoy_config(admin, listen, epp, mode="FULL_DUPLEX_STREAMED"):
    trailers = "SEND" if mode == "FULL_DUPLEX_STREAMED" else "SKIP"
    return TEMPLATE.format(admin=admin, listen=listen, epp=epp, mode=mode, trailers=trailers)
