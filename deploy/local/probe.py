"""Health probes for deploy/local/stack, using only the standard library.

    probe.py kafka HOST:PORT              a broker answers an ApiVersions request
    probe.py http URL [--header K:V] [--expect-json-key KEY=VALUE[,VALUE]]

Exit status 0 when the service answers as expected, 1 otherwise (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import urllib.request

API_VERSIONS_KEY = 18


def probe_kafka(address: str, timeout: float = 3.0) -> None:
    host, port = address.rsplit(":", 1)
    client_id = b"hitl-stack-probe"
    correlation_id = 7
    body = struct.pack(">hhih", API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        header = _read_exactly(sock, 4)
        (size,) = struct.unpack(">i", header)
        response = _read_exactly(sock, size)
    got_correlation, error_code = struct.unpack(">ih", response[:6])
    if got_correlation != correlation_id or error_code != 0:
        raise RuntimeError(f"ApiVersions answered correlation {got_correlation}, error {error_code}")


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise RuntimeError("connection closed mid-response")
        chunks.extend(chunk)
    return bytes(chunks)


def probe_http(url: str, headers: list[str], expect: str | None, timeout: float = 5.0) -> None:
    request = urllib.request.Request(url)
    for header in headers:
        name, value = header.split(":", 1)
        request.add_header(name.strip(), value.strip())
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = response.read()
    if expect:
        key, allowed = expect.split("=", 1)
        value = json.loads(payload).get(key)
        if str(value) not in allowed.split(","):
            raise RuntimeError(f"{key} is {value!r}, expected one of {allowed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    kafka = sub.add_parser("kafka")
    kafka.add_argument("address")
    http = sub.add_parser("http")
    http.add_argument("url")
    http.add_argument("--header", action="append", default=[])
    http.add_argument("--expect-json-key")
    args = parser.parse_args()
    try:
        if args.kind == "kafka":
            probe_kafka(args.address)
        else:
            probe_http(args.url, args.header, args.expect_json_key)
    except Exception as error:
        print(f"{args.kind}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
