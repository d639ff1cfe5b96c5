"""`hitl-workers run gateway`: binds the port, serves the app with uvicorn until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import socket

import uvicorn

from workers.config import Settings
from workers.errors import ConfigError
from workers.gateway.app import create_app
from workers.gateway.publishing import Publisher
from workers.logs import log
from workers.stopping import stop_on_signals

logger = logging.getLogger("hitl.gateway")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a ConfigError naming the setting when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they are TCP,
    # and with it on, every response (headers and body are two writes) waits 40 ms for an ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConfigError(
            f"HITL_GATEWAY__PORT={port}: cannot listen on {host}:{port} ({error.strerror}); "
            "set HITL_GATEWAY__PORT to a free port"
        ) from error
    listener.listen(2048)
    return listener


class GatewayServer:
    """The gateway on a bound socket; `run()` serves until `stop()`. Tests run it in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.socket = bind(settings.gateway.host, settings.gateway.port)
        self.port: int = self.socket.getsockname()[1]
        self.publisher = Publisher(settings)
        config = uvicorn.Config(
            create_app(settings, self.publisher), log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)

    @property
    def started(self) -> bool:
        return self._server.started

    def run(self) -> None:
        log(logger, "started", url=f"http://{self.socket.getsockname()[0]}:{self.port}")
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self.publisher.close()
            self.socket.close()
            log(logger, "stopped")

    def stop(self) -> None:
        self._server.should_exit = True


def serve(settings: Settings) -> None:
    server = GatewayServer(settings)

    # uvicorn handles these while it serves, then hands them to the handlers found at start.
    stop_on_signals(logger, server.stop)
    server.run()
