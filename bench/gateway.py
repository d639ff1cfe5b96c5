"""The gateway's throughput and latency, against a raw confluent-kafka producer in the same run.

    .venv/bin/python bench/gateway.py [--requests 2000] [--arrays 100] [--clients 8]

Starts `hitl-workers run gateway` as its own process on a new topic, then posts Feedback events
over keep-alive HTTP/1.1 connections from `--clients` threads: first one event per request, then
arrays of 100. Each request is answered only after the broker acknowledged its events, so the
latency includes the acknowledgement. The baseline does the same work without HTTP, validation or
Avro encoding: the same threads produce pre-encoded values with one shared confluent-kafka producer
(the runtime's producer settings) and wait for each request's acknowledgements. Prints requests/s,
events/s, p50 and p99 for each. Needs HITL_KAFKA_BOOTSTRAP (`deploy/local/stack env` prints it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

from tests.support.processes import free_port  # noqa: E402
from workers.config import load_settings  # noqa: E402
from workers.contracts import Feedback, encode  # noqa: E402
from workers.runtime.kafka_config import admin_config, producer_config  # noqa: E402

PARTITIONS = 6


def feedback_document(index: int) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-11-02T09:00:00Z",
        "session_id": f"session-{index % 100}",
        "question": "What is the maximum file size for uploads?",
        "answer": "Uploads are limited to 2 GB per file on every plan.",
        "contexts": [
            {
                "doc_id": "kb-087",
                "text": "The upload limit is 500 MB per file on the Starter plan.",
                "score": 0.87,
            }
        ],
        "rating": "down" if index % 3 else "up",
        "comment": "[outdated] the limit changed in May",
        "user_id": f"user-{index % 50}",
        "model": {"name": "support-assistant", "version": "2026-10"},
        "prompt_version": "rag-v7",
    }


@dataclass
class Result:
    name: str
    requests: int
    events: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        return (
            f"{self.name:<34} {self.requests / self.seconds:>9.0f} req/s "
            f"{self.events / self.seconds:>10.0f} events/s"
            f"   p50 {p50:>7.1f} ms   p99 {p99:>7.1f} ms"
        )


def run_clients(
    name: str, requests: int, per_request: int, clients: int, send: Callable[[int], Callable[[int], None]]
) -> Result:
    """`send(client)` gives that client's function that performs request `n`."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client(number: int) -> None:
        perform = send(number)
        mine: list[float] = []
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            started = time.perf_counter()
            perform(n)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(name, requests, requests * per_request, time.perf_counter() - started, latencies)


def http_sender(port: int, bodies: list[bytes]) -> Callable[[int], Callable[[int], None]]:
    def for_client(_client: int) -> Callable[[int], None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        # http.client writes headers and body apart: without this, Nagle's algorithm and the
        # server's delayed ACK add 40 ms to every request (browsers and curl set it too).
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def perform(n: int) -> None:
            connection.request(
                "POST", "/v1/feedback", body=bodies[n], headers={"content-type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"the gateway answered {response.status}")

        return perform

    return for_client


class RawProducer:
    """confluent-kafka alone: produce a request's values, wait for their acknowledgements."""

    def __init__(self, config: dict[str, object], topic: str) -> None:
        self.producer = Producer(config)
        self.topic = topic
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def send(self, values: list[tuple[bytes, bytes]]) -> None:
        remaining = [len(values)]
        done = threading.Event()
        lock = threading.Lock()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                raise RuntimeError(error.str())
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        for key, value in values:
            self.producer.produce(self.topic, key=key, value=value, on_delivery=on_delivery)
        if not done.wait(30):
            raise RuntimeError("not acknowledged in 30 s")

    def close(self) -> None:
        self._stop.set()
        self._poller.join()
        self.producer.flush(30)


def start_gateway(topic: str, port: int) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "HITL_TOPICS__FEEDBACK": topic, "HITL_GATEWAY__PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers", "run", "gateway", "--log-level", "WARNING"],
        cwd=REPO_DIR,
        env=environment,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the gateway did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests of one event")
    parser.add_argument("--arrays", type=int, default=100, help="requests of 100 events")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    settings = load_settings()
    admin = AdminClient(admin_config(settings))
    topic = f"bench-gateway-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)
    singles = [feedback_document(n) for n in range(args.requests)]
    arrays = [[feedback_document(n * 100 + i) for i in range(100)] for n in range(args.arrays)]
    single_bodies = [json.dumps(d).encode() for d in singles]
    array_bodies = [json.dumps(a).encode() for a in arrays]

    def encoded(document: dict[str, object]) -> tuple[bytes, bytes]:
        return str(document["event_id"]).encode(), encode(Feedback.model_validate(document))

    raw_singles = [[encoded(d)] for d in singles]
    raw_arrays = [[encoded(d) for d in a] for a in arrays]
    port = free_port()
    gateway = start_gateway(topic, port)
    results = []
    try:
        # A short warm-up, so that connections and metadata are in place for both.
        run_clients("warm-up", min(200, args.requests), 1, args.clients, http_sender(port, single_bodies))
        results.append(
            run_clients(
                "gateway, 1 event/request", args.requests, 1, args.clients, http_sender(port, single_bodies)
            )
        )
        results.append(
            run_clients(
                "gateway, 100 events/request", args.arrays, 100, args.clients, http_sender(port, array_bodies)
            )
        )
    finally:
        gateway.terminate()
        gateway.wait(30)
    raw = RawProducer(producer_config(settings), topic)
    try:
        run_clients(
            "warm-up", min(200, args.requests), 1, args.clients, lambda _c: lambda n: raw.send(raw_singles[n])
        )
        results.append(
            run_clients(
                "raw producer, 1 event/request",
                args.requests,
                1,
                args.clients,
                lambda _c: lambda n: raw.send(raw_singles[n]),
            )
        )
        results.append(
            run_clients(
                "raw producer, 100 events/request",
                args.arrays,
                100,
                args.clients,
                lambda _c: lambda n: raw.send(raw_arrays[n]),
            )
        )
    finally:
        raw.close()
        admin.delete_topics([topic])[topic].result(30)
    print(
        f"\n{args.clients} concurrent clients, broker {settings.kafka_bootstrap}, "
        f"topic of {PARTITIONS} partitions"
    )
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
