"""Who may call the model server (`serve.access`): ports, API keys, rate limits, an audit log.

`AccessGuard` wraps the server's ASGI app when the runtime config has `serve.access`:

- Two ports. The metrics port (`access.metrics_port`, which the compiled NetworkPolicy opens to
  the monitoring namespace only) serves `/metrics`, `/ready` with the model's identity and the
  liveness paths; the serving port serves predictions and the probes, its `/ready` a bare
  status, and answers 404 for `/metrics`. The kubelet's probes reach either port.
- API keys (`access.api_keys_dir`): a mounted Secret, one file per key, its name the caller's
  name and its content the key. Every key in it is valid, so keys rotate without downtime: add
  the new key, move clients, delete the old one. The folder is read again every
  `KEY_RELOAD_SECONDS` (the kubelet updates a mounted Secret in about a minute). A request
  brings its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`; without a valid one
  it gets 401. Keys are held as sha256 digests only, and never logged.
- A rate limit per client (`access.rate_limit`): a token bucket per API key name (or per client
  address without keys), answered with 429 and `Retry-After` when empty.
- The client's address is the peer's, unless the peer is a trusted proxy (`access.trusted_proxies`,
  CIDRs: the ingress or load balancer): then it is the rightmost `X-Forwarded-For` address that
  is not itself a trusted proxy, as uvicorn's ProxyHeadersMiddleware and nginx's `real_ip_recursive`
  read it (each proxy appends the address it was reached from, so only the right end is vouched
  for). A caller that is not a trusted proxy cannot move to another bucket by sending the header.
- An audit log (`access.audit`): one JSON line per request, written off the request path
  (`RequestLog`): time, request id, caller, client address, method, path, status, latency,
  model and version; the request body only at level `payloads`.

The probes (`/ping`, `/ready`, `/v2/health/live`, `/v2/health/ready`) need no key and are not
rate limited: the kubelet has none, and they say nothing about the model on the serving port.
Without a metrics port (a server started by hand), `/metrics` stays on the serving port, keyless.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.runtime.contract import API_KEY_HEADER, SERVER_METRICS, SERVER_PATHS
from mlc.runtime.contract.config import Access, RateLimit

if TYPE_CHECKING:
    from mlc.runtime.serve.app import ModelServer, Receive, Scope, Send

KEY_RELOAD_SECONDS = 10.0
MAX_KEY_BYTES = 4096  # a key file larger than this is not a key
MAX_CLIENTS = 10_000  # token buckets kept; the least recently seen are dropped beyond
PROBE_PATHS = frozenset({"/ping", SERVER_PATHS["ready"], SERVER_PATHS["live"], "/v2/health/ready"})
METRICS_PORT_PATHS = PROBE_PATHS | {SERVER_PATHS["metrics"]}
_JSON = b"application/json"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an API key's name (None without keys) and the client's address."""

    name: str | None
    address: str

    @property
    def client(self) -> str:
        """What the rate limit counts by."""
        return f"key:{self.name}" if self.name is not None else f"address:{self.address}"


class ApiKeys:
    """The valid API keys: sha256 digest -> the key's name, read from a mounted Secret's folder."""

    def __init__(self, directory: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._clock = clock
        self._digests: dict[bytes, str] = {}
        self._read_at = -math.inf
        self.reload()

    def reload(self) -> None:
        """Read the folder again: every regular file whose name does not start with `.` (the
        kubelet's `..data` links) is a key. An unreadable folder keeps no key valid (fail closed)."""
        digests: dict[bytes, str] = {}
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            names = []
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(self.directory, name)
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > MAX_KEY_BYTES:
                    continue
                with open(path, "rb") as handle:
                    key = handle.read().strip()
            except OSError:
                continue
            if key:
                digests[hashlib.sha256(key).digest()] = name
        self._digests = digests
        self._read_at = self._clock()

    def __len__(self) -> int:
        return len(self._digests)

    def name_of(self, key: bytes) -> str | None:
        """The name of the key, or None when it is not one of them (compared as sha256 digests)."""
        if self._clock() - self._read_at >= KEY_RELOAD_SECONDS:
            self.reload()
        return self._digests.get(hashlib.sha256(key).digest()) if key else None


def presented_key(headers: dict[bytes, bytes]) -> bytes:
    """The key a request brings: `Authorization: Bearer <key>`, else `X-API-Key`; empty when none."""
    authorization = headers.get(b"authorization", b"")
    scheme, _, value = authorization.partition(b" ")
    if scheme.lower() == b"bearer" and value.strip():
        return value.strip()
    return headers.get(API_KEY_HEADER.encode(), b"").strip()


class RateLimiter:
    """A token bucket per client: `rate` tokens a second, at most `burst`; one token a request."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = limit.requests_per_second
        self.burst = float(limit.burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def wait_seconds(self, client: str) -> float:
        """0 when the request may go (a token is taken), else how long until a token is there."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)  # most recently seen last
        if len(self._buckets) > MAX_CLIENTS:
            # The least recently seen client goes; its bucket has had the longest to refill.
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


_MAX_ADDRESS = 64  # a forwarded entry longer than any address is cut: it names a bucket and an audit field


def _forwarded_host(entry: str) -> str:
    """An `X-Forwarded-For` entry's address: without a port, IPv6 brackets or zone; canonical when an IP."""
    host = entry.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host[:_MAX_ADDRESS]


class ClientAddress:
    """Who a request came from: the peer, or behind trusted proxies the address they forwarded."""

    def __init__(self, trusted_proxies: list[str]) -> None:
        self.networks = [ipaddress.ip_network(proxy) for proxy in trusted_proxies]

    def trusted(self, address: str) -> bool:
        """Whether the address is one of the trusted proxies."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def of(self, scope: Scope) -> str:
        """The client's address: the rightmost forwarded one that is not a trusted proxy, when the
        peer is one (all trusted: the leftmost); otherwise the peer."""
        peer = _peer(scope)
        if not self.networks or not self.trusted(peer):
            return peer
        # Every X-Forwarded-For line, in order (a proxy may add a line rather than append).
        lines = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        entries = [_forwarded_host(entry) for entry in b",".join(lines).decode("latin-1").split(",") if entry.strip()]
        if not entries:
            return peer
        for entry in reversed(entries):
            if not self.trusted(entry):
                return entry
        return entries[0]


def _local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    return int(server[1]) if server else None


class AccessGuard:
    """The ASGI app in front of a `ModelServer` when the config has `serve.access`."""

    def __init__(self, server: ModelServer, access: Access, metric_names: dict[str, str] | None = None) -> None:
        from prometheus_client import Counter

        from mlc.runtime.serve.request_log import RequestLog

        self.server = server
        self.access = access
        self.keys = ApiKeys(access.api_keys_dir) if access.api_keys_dir else None
        self.limiter = RateLimiter(access.rate_limit) if access.rate_limit else None
        self.client_address = ClientAddress(access.trusted_proxies)
        name = {**SERVER_METRICS, **(metric_names or {})}["audit_log_dropped_total"]
        dropped = Counter(
            name, "Audit log lines dropped because the writer fell behind.", registry=server.metrics.registry
        )
        rate = 0.0 if access.audit == "off" else 1.0
        self.audit = RequestLog(rate, "-", dropped.inc)

    # The lifespan of the wrapped server, with the audit writer's.
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.audit.start()
            elif message["type"] == "lifespan.shutdown.complete":
                self.audit.stop()
            await send(message)

        await self.server(scope, receive, sending)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            return
        path = scope["path"]
        metrics_port = self.access.metrics_port
        if metrics_port is not None and _local_port(scope) == metrics_port:
            if path in METRICS_PORT_PATHS:
                await self.server(scope, receive, send)
            else:
                await _refuse(send, 404, "NOT_FOUND", f"no endpoint {path} on the metrics port")
            return
        if path in PROBE_PATHS:
            if path == SERVER_PATHS["ready"] and metrics_port is not None:
                await self._bare_ready(send)  # the model's identity is for the metrics port
            else:
                await self.server(scope, receive, send)
            return
        if path == SERVER_PATHS["metrics"]:
            if metrics_port is not None:
                await _refuse(send, 404, "NOT_FOUND", f"no endpoint {path} here: metrics are on the metrics port")
            else:  # one port (a server run by hand): Prometheus brings no API key
                await self.server(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    async def _bare_ready(self, send: Send) -> None:
        ready = self.server.scorer is not None and self.server.info is not None
        await _send_json(send, 200 if ready else 503, b'{"status":"ready"}' if ready else b'{"status":"loading"}')

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        caller = Caller(None, self.client_address.of(scope))
        status = 500
        request_id = b""
        body = bytearray() if self.access.audit == "payloads" else None

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = int(message["status"])
                request_id = dict(message.get("headers", ())).get(b"x-request-id", b"")
            await send(message)

        async def receiving() -> dict[str, Any]:
            message = await receive()
            if body is not None and message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        try:
            refusal = self._refusal(headers, caller)
            if isinstance(refusal, Caller):
                caller = refusal
                await self.server(scope, receiving, sending)
            else:
                status = refusal[0]
                await _refuse(send, *refusal)
        finally:
            seconds = time.perf_counter() - started
            if status in (401, 429):  # refused here, before the server counted it
                self.server.metrics.observe_request(status, seconds)
            if self.audit.sampled():
                self.audit.submit(self._audit_record(scope, request_id, caller, status, seconds, body))

    def _refusal(self, headers: dict[bytes, bytes], caller: Caller) -> Caller | tuple[int, str, str, list]:
        """The caller when the request may go on, else (status, code, message, extra headers)."""
        if self.keys is not None:
            name = self.keys.name_of(presented_key(headers))
            if name is None:
                return (
                    401,
                    "UNAUTHENTICATED",
                    "a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                    [(b"www-authenticate", b'Bearer realm="mlc"')],
                )
            caller = Caller(name, caller.address)
        if self.limiter is not None:
            wait = self.limiter.wait_seconds(caller.client)
            if wait > 0:
                return (
                    429,
                    "RATE_LIMITED",
                    f"more than {self.limiter.rate:g} requests a second (burst {self.limiter.burst:g}); "
                    f"retry in {wait:.2f} s",
                    [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
                )
        return caller

    def _audit_record(
        self,
        scope: Scope,
        request_id: bytes,
        caller: Caller,
        status: int,
        seconds: float,
        body: bytearray | None,
    ) -> dict[str, Any]:
        info = self.server.info
        record: dict[str, Any] = {
            "log": "audit",
            "request_id": request_id.decode("latin-1"),
            "caller": caller.name,
            "address": caller.address,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "model": info.model if info else "",
            "version": info.version if info else "",
        }
        if body is not None:
            record["payload"] = bytes(body).decode("utf-8", "replace")
        return record


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, code: str, message: str, extra: list | None = None) -> None:
    import orjson

    await _send_json(send, status, orjson.dumps({"error_code": code, "message": message}), extra)


def listening_sockets(host: str, ports: list[int | None], backlog: int) -> list[Any]:
    """Bound, listening sockets on `host` for each port given (the serving and the metrics port),
    for one uvicorn server: a request's scope says which port it came in on."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    for port in ports:
        if port is None:
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets
