"""How uvicorn is configured and started: trusted proxies, header size, read timeouts and a connection cap.

``facerec serve`` and the tests' live servers both build their uvicorn ``Config`` with :func:`build_config`,
so the tests exercise the limits production runs with.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import resource
import socket
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import h11
import uvicorn
from prometheus_client import multiprocess
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from service.metrics import shared_between_workers
from service.settings import LOG_FORMAT, Settings

logger = logging.getLogger("service.server")

# Descriptors kept free of connections: database, model and index files, logs, and the sockets asyncio
# accepts in one burst before the connection cap can close older ones.
FD_RESERVE = 256
# uvicorn's exit status when the app failed to start (uvicorn.main.STARTUP_FAILURE).
STARTUP_FAILURE = 3
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging (its own messages on stderr, access lines on stdout) in the service's line format,
    so one parser reads every line the server writes."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["default"] = {"()": "logging.Formatter", "fmt": LOG_FORMAT}
    config["formatters"]["access"] = {
        "()": "uvicorn.logging.AccessFormatter",
        "fmt": LOG_FORMAT.replace("%(message)s", '%(client_addr)s - "%(request_line)s" %(status_code)s'),
        "use_colors": False,
    }
    return config


def trusted_proxy_list(value: str) -> list[str]:
    """The proxies of ``FACEREC_TRUSTED_PROXIES``; a ValueError names an entry that is no address or network."""
    proxies = [item.strip() for item in value.split(",") if item.strip()]
    for item in proxies:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            # uvicorn would silently take it as a literal that never matches a client address.
            raise ValueError(f"FACEREC_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return proxies


class FacerecConfig(uvicorn.Config):
    """uvicorn's ``Config`` plus the limits :class:`GuardedH11Protocol` enforces."""

    def __init__(
        self,
        app: Callable[..., Any] | str,
        *,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
        body_min_rate: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(app, **options)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.max_connections = max_connections


def open_file_limit() -> int:
    """This process's soft limit on open files (each connection holds one)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return sys.maxsize if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit, as far as the system allows; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open file limit from %d to %d: %s", soft, target, exc)
    return open_file_limit()


def build_config(
    settings: Settings,
    app: Callable[..., Any] | str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = False,
    log_level: str | None = None,
) -> FacerecConfig:
    """The uvicorn configuration for ``settings``: used by ``facerec serve`` and by the tests' live servers."""
    proxies = trusted_proxy_list(settings.trusted_proxies)
    max_connections = settings.max_connections
    room = open_file_limit() - FD_RESERVE
    if max_connections > room:
        # Past the descriptor limit accept() fails and new clients are dropped whatever the cap says.
        max_connections = max(2, room)
        logger.warning(
            "FACEREC_MAX_CONNECTIONS=%d exceeds what the open file limit allows; using %d",
            settings.max_connections,
            max_connections,
        )
    return FacerecConfig(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        log_level=log_level or settings.log_level.lower(),
        log_config=uvicorn_log_config(),
        # h11 (not httptools) because it bounds the request head: httptools buffers a header line of any length.
        http=GuardedH11Protocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws="none",  # the app has no WebSocket routes; an upgrade must not escape the timeouts below
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; behind nothing that lets anyone pick their address.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        # GuardedH11Protocol keeps at most max_connections open by closing idle ones; only when every one is
        # busy with a request does uvicorn answer 503 (it counts the new connection too, hence + 1).
        limit_concurrency=max_connections + 1,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        body_min_rate=settings.body_min_rate,
        max_connections=max_connections,
    )


class MetricsMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, telling prometheus_client of every worker that is gone.

    Workers leave when they crash or hang (uvicorn replaces them), on ``SIGHUP`` (all replaced), ``SIGTTOU``
    (one retired) and at shutdown. Marking them dead drops their live gauges (requests in progress, index
    sizes) from the scrape; their counters and histograms stay, so totals never go back.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: Path) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        self._running: set[int] = set()

    def init_processes(self) -> None:
        """Start the workers as uvicorn does and note them, so that even one dying before the first check counts."""
        super().init_processes()
        self.forget_gone_workers()

    def keep_subprocess_alive(self) -> None:
        """Replace dead workers as uvicorn does, then forget the replaced ones."""
        super().keep_subprocess_alive()
        self.forget_gone_workers()

    def handle_signals(self) -> None:
        """Restart, add or retire workers as uvicorn does, then forget the ones that left."""
        super().handle_signals()
        self.forget_gone_workers()

    def run(self) -> None:
        """Supervise until told to stop; then every worker has gone."""
        try:
            super().run()
        finally:
            self.forget_gone_workers(stopping=True)

    def forget_gone_workers(self, *, stopping: bool = False) -> None:
        """Mark dead the workers that are no longer among uvicorn's (every one when ``stopping``)."""
        running = set() if stopping else {process.pid for process in self.processes if process.pid is not None}
        for pid in sorted(self._running - running):
            multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]
        self._running = running


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve ``service.app:create_app`` with :func:`build_config` in ``workers`` processes."""
    raise_open_file_limit()
    config = build_config(settings, "service.app:create_app", factory=True, host=host, port=port, workers=workers)
    server = uvicorn.Server(config)
    if workers > 1:
        # Set up before any worker exists: a worker's metrics go to the shared directory only when
        # PROMETHEUS_MULTIPROC_DIR is in its environment as it imports prometheus_client (it inherits ours).
        with shared_between_workers() as metrics_dir:
            MetricsMultiprocess(config, sockets=[config.bind_socket()], metrics_dir=metrics_dir).run()
        return
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl+C once it has shut down
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


# Per server: its connections waiting for request headers, longest waiting first (the ones to close at the cap).
_waiting_for_headers: WeakKeyDictionary[ServerState, OrderedDict[GuardedH11Protocol, None]] = WeakKeyDictionary()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a body progress timeout and a cap on open connections.

    - Request headers must be complete within ``header_timeout`` seconds of the connection or of the previous
      response; trickling bytes does not extend the deadline.
    - A request body must make progress at least every ``body_timeout`` seconds while the server is reading it
      (time the app is not reading, or a client waits for ``100 Continue``, does not count).
    - And it must average ``body_min_rate`` bytes a second past its first ``body_timeout`` seconds, so a client
      trickling a byte now and then cannot hold a connection for hours (Apache's mod_reqtimeout ``MinRate``).
      Whenever the server is the one holding the client up, the count starts afresh.
    - Beyond ``max_connections`` a new connection closes the one that has waited longest for its request
      headers (idle keep-alive and slow-header connections), never one with a request in progress.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(config, FacerecConfig):
            raise TypeError("GuardedH11Protocol needs the FacerecConfig of service.server.build_config")
        self.header_timeout = config.header_timeout
        self.body_timeout = config.body_timeout
        self.body_min_rate = config.body_min_rate
        self.max_connections = config.max_connections
        self._waiting = _waiting_for_headers.setdefault(server_state, OrderedDict())
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_progress = 0.0
        self._body_clock = 0.0  # when the body's average rate started being measured
        self._body_bytes = 0  # bytes received since then
        self._body_asked = False  # whether the app has asked for this request's body yet
        self._rate_cycle: object = None  # the request whose body the rate above measures

    # uvicorn's hooks ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header deadline; at the cap, close the connection that has waited longest for headers."""
        super().connection_made(transport)
        self.flow = _BodyFlow(transport, self)  # before any request: each request cycle takes this one
        self._watch()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does, then re-arm the timers for what the connection waits for now."""
        if self.conn.their_state is h11.SEND_BODY:
            self._body_bytes += len(data)
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        """The next request's headers get a fresh deadline, counted from this response."""
        self._stop_header_timer()
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timers with the connection."""
        self._stop_header_timer()
        self._stop_body_timer()
        super().connection_lost(exc)

    # timers ------------------------------------------------------------------------------------------------
    def _watch(self) -> None:
        if self.transport.is_closing():
            self._stop_header_timer()
            self._stop_body_timer()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)
                self._waiting[self] = None
        else:
            self._stop_header_timer()
        if state is h11.SEND_BODY:
            self.note_body_progress()
            if self._rate_cycle is not self.cycle:  # a new request (pipelined ones can share the timer)
                self._rate_cycle = self.cycle
                self.restart_body_rate()
                self._body_asked = False
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
        else:
            self._stop_body_timer()

    def app_reads_body(self, *, held_up: bool) -> None:
        """The app asks for (more of) the body. Its first ask, or one after the client was ``held_up`` by a
        full buffer, ends a wait that was the server's: the average rate is measured afresh from here."""
        if held_up or not self._body_asked:
            self.restart_body_rate()
            self._body_asked = True
        self.note_body_progress()

    def note_body_progress(self) -> None:
        """Restart the body timeout: bytes arrived, or the app asked for more (time before that was the app's)."""
        self._body_progress = self.loop.time()

    def restart_body_rate(self) -> None:
        """Measure the body's average rate from now on: the time before was the server's."""
        self._body_clock = self.loop.time()
        self._body_bytes = 0

    def _body_rate_deadline(self) -> float:
        """When the body falls below the minimum average rate, at the bytes received so far."""
        if not self.body_min_rate:
            return float("inf")
        return self._body_clock + self.body_timeout + self._body_bytes / self.body_min_rate

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._waiting.pop(self, None)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        self._waiting.pop(self, None)
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        partial_request, _closed = self.conn.trailing_data
        if partial_request:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _body_timed_out(self) -> None:
        # One timer per request, re-armed for the time left rather than reset on every chunk received.
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue):
            self.note_body_progress()  # the client is waiting for the app, not the other way round
            self.restart_body_rate()
        deadline = min(self._body_progress + self.body_timeout, self._body_rate_deadline())
        remaining = deadline - self.loop.time()
        if remaining > 0:
            self._body_timer = self.loop.call_later(remaining, self._body_timed_out)
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _make_room(self) -> None:
        victim = next((waiting for waiting in self._waiting if waiting is not self), None)
        if victim is None:
            return  # every other connection has a request in progress: uvicorn answers this one 503
        victim._stop_header_timer()
        # Counted as gone at once, so that a burst of arrivals closes one connection each, not more.
        self.connections.discard(victim)
        victim.transport.close()


class _BodyFlow(FlowControl):
    """uvicorn's flow control, telling the protocol whenever the app asks for more of the request body."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedH11Protocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def resume_reading(self) -> None:
        """Called by each ``receive()`` of the app (after any ``100 Continue``) and after each response."""
        self._protocol.app_reads_body(held_up=self.read_paused)
        super().resume_reading()
