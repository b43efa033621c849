#!/usr/bin/env python3
"""An OTLP/HTTP metrics receiver for tracer's tests (tests/otlp.rs).

Decodes each POST with OpenTelemetry's own protobuf definitions (opentelemetry-proto, from
PyPI) and prints one JSON line per request: its content type, its resource's attributes,
and every data point: metric name, kind, attributes, and value (sums and gauges) or count,
sum, bucket counts and bounds (histograms), with the sums' monotonicity and temporality.
Listens on 127.0.0.1:PORT (0: a free port); its first line says which.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2


def attributes(kvs):
    return {kv.key: kv.value.string_value for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        request.ParseFromString(body)
        points, resource = [], {}
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        if kind == "histogram":
                            value = {
                                "count": p.count,
                                "sum": p.sum,
                                "buckets": list(p.bucket_counts),
                                "bounds": list(p.explicit_bounds),
                            }
                        elif p.WhichOneof("value") == "as_int":
                            value = p.as_int
                        else:
                            value = p.as_double
                        points.append({
                            "name": m.name,
                            "kind": kind,
                            "attrs": attributes(p.attributes),
                            "value": value,
                            "monotonic": getattr(data, "is_monotonic", None),
                            "temporality": getattr(data, "aggregation_temporality", None),
                        })
        print(json.dumps({
            "content_type": self.headers.get("Content-Type"),
            "resource": resource,
            "points": points,
        }), flush=True)
        reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


HTTPServer.allow_reuse_address = True
server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
