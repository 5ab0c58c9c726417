"""The model server: a plain ASGI app, run by uvicorn (uvloop and httptools when installed).

Endpoints (one port):
- `POST /invocations`: MLflow's scoring formats (`payload.py`) -> contract check
  (`validation.py`, 400 naming row, column and what is valid) -> micro-batch (`batching.py`)
  -> `{"predictions": [...]}`. 503 until the model is loaded; 500 (short message) when the
  model itself fails.
- Open Inference Protocol (KServe V2 / Triton REST, `open_inference.py`): `GET /v2`,
  `/v2/health/live`, `/v2/health/ready`, `/v2/models/{name}[/versions/{v}]` (metadata from the
  contract), `.../ready`, `POST .../infer`.
- `GET /ping`: MLflow's meaning, 200 once the model is loaded (503 before); `/v2/health/live`
  is the liveness probe, 200 whenever the process serves. `GET /ready`: 200 and the model's
  identity once loaded, 503 before.
- `GET /metrics`: Prometheus text (`metrics.py`).

Why no web framework: a prediction request's own work (parse, check, encode, score) costs tens
of microseconds, so routing, request and response objects would be a large share of each
request; the handlers here read the ASGI scope and send the two response messages themselves.

Every prediction response carries `X-Request-ID` (the client's, or a new one); a sample of
answered requests is written with it to the prediction log (`prediction_log/writer.py`: Parquet
by the hour, from a background thread), never delaying or failing the response.

Limits (`limits`, the runtime config's `serve.limits`, else the contract's defaults): a body larger
than `max_body_bytes` is refused with 413 before it is read; one of more rows, columns or JSON
nesting than `max_rows`, `max_columns`, `max_depth` gets 400 before it is parsed into columns; bodies being
read or held by all requests together stay under `max_buffered_bytes` (beyond: 503, retry), and
uvicorn answers 503 past `max_connections` concurrent connections, so memory stays bounded
whatever the clients do. A connection whose request line and headers are not complete
`header_timeout_seconds` after it opens (or after its request's first byte) is closed
(`header_deadline.py`); a body not received within `body_timeout_seconds` of its headers is
answered 408 and its connection closed (a client trickling bytes holds nothing for long); a
client that goes away mid-body is counted as 499, never as a server error. The in-flight gauge
(what KEDA scales on) counts requests from a received, valid body to their answer: a socket
still sending its body is not load on the model.

The model loads on the load thread after the server starts listening (a registry model is
downloaded meanwhile by a forked child, `served_model.RegistryFetch`), is run once on rows
within the contract (warm-up), and only then is the server ready. A model that fails to load
stops the server with exit 1; an alias that names no version yet (a fresh registry: no training
Job's gate has promoted a champion) does not: the server logs one line saying so, stays live but
not ready, and checks again every `watch_seconds`.

Serving follows the alias: every `watch_seconds` the server resolves `models:/<name>@<alias>`;
when the alias has moved (a gate promoted a new version, or `rollback` moved it back), the new
version is downloaded, loaded and warmed up on the load thread while the old one keeps
answering, then swapped in between two batches (`mlc_model_info` names the new version). A
failure to follow is logged and the old version keeps serving.

A pinned server (`champion_uri` set: a canary rollout's pod template names the version) serves
that version only; every `watch_seconds` it reads the alias and exports whether it still names
the served version (`mlc_model_is_champion`), so an aborted canary, whose stable pods keep the
old version while the registry names the new one, is visible (and alerted on).

A model whose calls take well under a millisecond runs on the event loop itself (a thread hop
would cost more than the call); a slower one on the model thread, so the loop keeps reading
requests meanwhile. SIGTERM: uvicorn stops accepting
connections and waits (up to `graceful_timeout_seconds`) for in-flight requests, whose queued
rows the batcher still predicts; then uvicorn re-raises the signal, so the process ends as
killed by SIGTERM (143), like any process asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlc.runtime.contract import SERVER_PATHS
from mlc.runtime.contract.config import Access, Contract, ServeLimits
from mlc.runtime.prediction_log.writer import PredictionLogWriter
from mlc.runtime.serve.batching import MicroBatcher
from mlc.runtime.serve.body_deadlines import BodyDeadlines
from mlc.runtime.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mlc.runtime.serve.metrics import ServerMetrics
from mlc.runtime.serve.payload import (
    RequestColumns,
    columns_table,
    decode_json,
    parse_csv_body,
    refuse_long,
    refuse_wide,
    request_columns,
)
from mlc.runtime.serve.scoring import Predictions, Scorer
from mlc.runtime.serve.served_model import ModelError, ModelInfo, NoVersionYet, RegistryFetch, alias_uri
from mlc.runtime.serve.validation import CheckedRows, ContractCheck, InvalidRequest

log = logging.getLogger("mlc.runtime.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
# A model whose warmed-up calls take less than this (median) runs on the event loop instead of the
# model thread; one that later averages more than INLINE_LIMIT_SECONDS per call moves to the model
# thread for good. Two thresholds, so contention on a busy machine does not make it flap.
INLINE_CALL_SECONDS = 0.001
INLINE_LIMIT_SECONDS = 0.005
_SMOOTHING = 0.1  # weight of the newest call in the moving average
_WARM_UP_CALLS = 5
REQUEST_ID_HEADER = b"x-request-id"
_MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class ServeSettings:
    """How one server serves: the model, the contract, batching, limits, request logging."""

    model_uri: str
    tracking_uri: str
    contract: Contract | None
    model_name: str = ""  # the name in /v2/models/{name} (default: the registered model's)
    metric_names: dict[str, str] = field(default_factory=dict)
    max_batch_rows: int = 256
    max_wait_ms: float = 5.0
    max_buffered_bytes: int = 256 * 1024 * 1024
    limits: ServeLimits = field(default_factory=ServeLimits)  # per request: body, rows, columns, depth, timeouts
    log_sample_rate: float = 0.0
    log_uri: str | None = None  # the prediction log (monitor.prediction_log.uri); None: nothing is logged
    log_flush_seconds: float = 30.0
    watch_seconds: float = 30.0  # how often a served alias is checked for a new version (0: never)
    # A pinned server (a canary's pod template names its version): the alias it compares its
    # version with, never swapping (`mlc_model_is_champion`). None: not pinned.
    champion_uri: str | None = None
    access: Access | None = None  # who may call (`access.py`); None: anyone the network lets through


class Refused(Exception):
    """A request answered with an error before scoring (status, code, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Response headers: close the connection when the rest of the body will not be read."""
        return [(b"connection", b"close")] if self.status in (408, 413) else []


def _runtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlc")
    except PackageNotFoundError:
        return "unknown"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])  # names are lower-case in ASGI


class RequestIds:
    """Request ids: 32 hex digits, a random per-process half and a counter (unique across pods, no syscall)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = 0

    def __call__(self, headers: dict[bytes, bytes]) -> bytes:
        """The client's `X-Request-ID` when it is one printable token of at most 128 bytes, else a new id."""
        given = headers.get(REQUEST_ID_HEADER)
        if given and len(given) <= _MAX_REQUEST_ID and all(0x21 <= byte <= 0x7E for byte in given):
            return given
        self._count += 1
        return f"{self._prefix}{self._count:016x}".encode()


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def echoed_ids(rows: CheckedRows) -> dict[str, list[dict[str, Any]]]:
    """`{"ids": [{"customer_id": ...}, ...]}`, one object per prediction, when the request carried
    the contract's id columns (`data.contract.ids`); nothing otherwise."""
    if not rows.ids:
        return {}
    names = list(rows.ids)
    return {"ids": [dict(zip(names, values, strict=True)) for values in zip(*rows.ids.values(), strict=True)]}


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


class ModelServer:
    """The ASGI app and what its handlers share (the loaded model, the batcher, the metrics)."""

    def __init__(self, settings: ServeSettings, fetch: RegistryFetch | None = None) -> None:
        self.settings = settings
        self.metrics = ServerMetrics(settings.metric_names)
        contract = settings.contract
        self.check = ContractCheck(contract) if contract is not None and contract.features else None
        self.fetch = fetch
        self.scorer: Scorer | None = None
        self.info: ModelInfo | None = None
        self.load_error: str | None = None
        self.waiting: str | None = None  # why there is no model yet (the alias names no version)
        self.batcher: MicroBatcher | None = None
        self.prediction_log = _prediction_log(settings, self.metrics)
        self.on_fatal: Callable[[], None] = lambda: None
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlc-model")
        # Loading (the first model and each new version) never holds up the model thread's scoring.
        self.load_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlc-load")
        self.inline = False  # run the model on the event loop (set from measured call times)
        self._call_seconds: float | None = None
        self._buffered = 0  # body bytes held by requests being answered
        self._body_deadlines = BodyDeadlines(settings.limits.body_timeout_seconds)
        self._loading: asyncio.Task[None] | None = None
        self._version = _runtime_version()
        self._request_id = RequestIds()
        self._routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            SERVER_PATHS["invocations"]: self._invocations,
            "/ping": self._ping,
            SERVER_PATHS["ready"]: self._ready,
            SERVER_PATHS["metrics"]: self._metrics,
            "/v2": self._server_metadata,
            SERVER_PATHS["live"]: self._live,
            "/v2/health/ready": self._v2_ready,
        }

    @property
    def model_name(self) -> str:
        """The name the Open Inference Protocol addresses the model by."""
        if self.settings.model_name:
            return self.settings.model_name
        return self.info.model if self.info is not None and self.info.model else "model"

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            handler = self._routes.get(path)
            if handler is not None:
                await handler(scope, receive, send)
            elif path.startswith("/v2/models/"):
                await self._v2_model(scope, receive, send)
            else:
                await _send(send, 404, _json({"error_code": "NOT_FOUND", "message": f"no endpoint {path}"}))
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        loop = asyncio.get_running_loop()

        def run_model(function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            if self.inline:
                future = loop.create_future()
                try:
                    future.set_result(function(*args))
                except Exception as error:
                    future.set_exception(error)
                return future
            return loop.run_in_executor(self.model_thread, function, *args)

        self.batcher = MicroBatcher(
            self._score_batch,
            run_model,
            self.settings.max_batch_rows,
            self.settings.max_wait_ms,
            on_batch=self.metrics.observe_batch,
        )
        self.batcher.start()
        self.prediction_log.start()
        self._loading = loop.create_task(self._load(loop))

    async def _stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        self.model_thread.shutdown(wait=False, cancel_futures=True)
        self.load_thread.shutdown(wait=False, cancel_futures=True)
        self._body_deadlines.stop()
        self.prediction_log.stop()
        if self.fetch is not None:
            self.fetch.remove()

    # --- loading -------------------------------------------------------------------------------

    def _load_blocking(self, fetch: RegistryFetch | None) -> tuple[ModelInfo, Scorer]:
        from pathlib import Path

        from mlc.runtime.serve.scoring import ContractScorer, PyfuncScorer, contract_scorer_fits
        from mlc.runtime.serve.served_model import directory_info, load_served_model, resolve_model

        started = time.perf_counter()
        import numpy  # noqa: F401  (imported while a forked child downloads the model)
        import torch  # noqa: F401

        settings = self.settings
        if fetch is not None:
            info = fetch.result()
            directory = fetch.directory
        elif settings.model_uri.startswith("models:/"):
            info = resolve_model(settings.model_uri, settings.tracking_uri)
            directory = None
        else:
            info = directory_info(settings.model_uri)
            directory = Path(settings.model_uri.removeprefix("file://"))
        from mlc.runtime.contract_model import ContractModelParts
        from mlc.runtime.serve.served_model import load_model

        # A model mlc registered is scored straight through its parts; any other through its pyfunc.
        model = load_model(info) if directory is None else load_served_model(directory)
        parts = model if isinstance(model, ContractModelParts) else _contract_parts(model)
        if parts is not None and contract_scorer_fits(parts.preprocessor, settings.contract):
            scorer: Scorer = ContractScorer(parts)
        else:  # not mlc's, or the served contract is not the one it was trained on
            pyfunc = load_model(ModelInfo("", "", "", "", str(directory))) if model is parts else model
            scorer = PyfuncScorer(pyfunc, settings.contract)
        loaded = time.perf_counter()
        self._warm_up(scorer)
        self._warm_refusals()
        label = f"{info.model} version {info.version}" if info.version else info.uri
        log.info(
            "loaded %s from %s in %.2fs, warmed up in %.2fs (model calls %s)",
            label,
            info.uri,
            loaded - started,
            time.perf_counter() - loaded,
            "on the event loop" if self.inline else "on the model thread",
        )
        return info, scorer

    def _warm_up(self, scorer: Scorer) -> None:
        """Run the model on rows within the contract, one row then full batches, and time it.

        The first calls are slow (torch picks its kernels, caches fill); the median of the
        last full-batch calls decides whether the model runs on the event loop.
        """
        from mlc.runtime.serve.scoring import warm_up_rows

        single = warm_up_rows(self.settings.contract, 1)
        full = warm_up_rows(self.settings.contract, self.settings.max_batch_rows)
        if single is None or full is None:
            return  # no contract: nothing to make rows from; the model thread it is
        timings = []
        for batch in [single, *[full] * _WARM_UP_CALLS]:
            started = time.perf_counter()
            try:
                self._timed(scorer, [batch], observe=False)
            except Exception as error:  # the model's own failure shows on the first request, as a 500
                log.warning("warm-up prediction failed: %s: %s", type(error).__name__, error)
                return
            timings.append(time.perf_counter() - started)
            if timings[-1] > 0.1:
                return  # a slow model: no need to time it further, it runs on the model thread
        median = sorted(timings[1:])[len(timings[1:]) // 2]
        self._call_seconds = median
        self.inline = median < INLINE_CALL_SECONDS

    def _warm_refusals(self) -> None:
        """Refuse a CSV body and a row the fast check cannot judge, on the model thread.

        The arrow check imports pyarrow and pandas (about a second): done here, before the
        server is ready, rather than on the event loop when a client first sends such a body.
        """
        if self.check is None:
            return
        for body in (b"x\n1\n", None):
            try:
                table = parse_csv_body(body) if body else columns_table(request_columns({"inputs": {"x": [None]}}))
                self.check.checked_table(table)
            except InvalidRequest:
                pass

    def _timed(self, scorer: Scorer, batch: list[CheckedRows], observe: bool = True) -> list[Predictions]:
        started = time.perf_counter()
        parts, numeric = scorer.score_batch(batch)
        seconds = time.perf_counter() - started
        previous = self._call_seconds
        self._call_seconds = seconds if previous is None else previous + _SMOOTHING * (seconds - previous)
        if self.inline and self._call_seconds > INLINE_LIMIT_SECONDS:
            self.inline = False
            log.warning("model calls average %.1f ms: moving them to the model thread", self._call_seconds * 1000)
        if observe:
            for column, values in numeric.items():
                self.metrics.observe_predictions(column, values)
        return parts

    def _score_batch(self, batch: list[CheckedRows]) -> list[Predictions]:
        assert self.scorer is not None
        return self._timed(self.scorer, batch)

    async def _load(self, loop: asyncio.AbstractEventLoop) -> None:
        watch = self.settings.watch_seconds
        fetch = self.fetch
        while True:
            try:
                info, scorer = await loop.run_in_executor(self.load_thread, self._load_blocking, fetch)
                break
            except NoVersionYet as error:
                if watch <= 0:
                    self._fail(error)
                    return
                if self.waiting is None:  # one line, not one per check
                    log.warning(
                        "waiting for a model: %s. Not ready until a version has that alias (the training "
                        "Job's gate promotes one); checking every %gs",
                        error,
                        watch,
                    )
                self.waiting = str(error)
                fetch = None  # later checks resolve and load in this process
                await asyncio.sleep(watch)
            except Exception as error:  # whatever stops loading stops the server, with one line saying why
                self._fail(error)
                return
        self.waiting = None
        self._serve(info, scorer)
        # The downloaded folder stays until the server stops: its `code/` is on sys.path, and a
        # model may import from it lazily.
        if alias_uri(self.settings.model_uri) and watch > 0:
            await self._follow(loop)
        elif self.settings.champion_uri is not None and watch > 0:
            await self._compare_with_champion(loop, self.settings.champion_uri)

    def _fail(self, error: Exception) -> None:
        self.load_error = str(error) if isinstance(error, ModelError) else f"{type(error).__name__}: {error}"
        log.error("error: %s", self.load_error, exc_info=not isinstance(error, ModelError))
        self.on_fatal()

    def _serve(self, info: ModelInfo, scorer: Scorer) -> None:
        """Answer with `scorer` from the next batch on (one assignment: a batch sees one model)."""
        self.metrics.model_info.clear()
        self.metrics.model_info.labels(info.model, info.version, info.alias, info.run_id, info.uri).set(1)
        if alias_uri(self.settings.model_uri):  # what the alias names is what answers
            self.metrics.set_champion(info.version, True)
        self.info = info
        self.scorer = scorer

    def _alias_version(self, uri: str) -> str:
        from mlc.runtime.serve.served_model import resolve_model

        return resolve_model(uri, self.settings.tracking_uri).version

    async def _compare_with_champion(self, loop: asyncio.AbstractEventLoop, champion_uri: str) -> None:
        """A pinned server: every `watch_seconds`, whether the alias still names the version served
        (exported, never acted on: a new version reaches this deployment as a new pod template)."""
        assert self.info is not None
        while True:
            try:
                champion = await loop.run_in_executor(self.load_thread, self._alias_version, champion_uri)
            except NoVersionYet:
                champion = ""
            except Exception as error:  # the registry unreachable: the last answer stands
                log.warning("cannot read %s (serving pinned version %s): %s", champion_uri, self.info.version, error)
            else:
                is_champion = champion == self.info.version
                if not is_champion and self.metrics.champion != (self.info.version, False):  # one line per change
                    log.warning(
                        "serving pinned version %s; %s names version %s (a rollout in progress, or an aborted one)",
                        self.info.version,
                        champion_uri,
                        champion or "none",
                    )
                self.metrics.set_champion(self.info.version, is_champion)
            await asyncio.sleep(self.settings.watch_seconds)

    async def _follow(self, loop: asyncio.AbstractEventLoop) -> None:
        """Check the alias every `watch_seconds`; load, warm up and swap in the version it moves to."""
        uri = self.settings.model_uri
        while True:
            await asyncio.sleep(self.settings.watch_seconds)
            assert self.info is not None
            try:
                version = await loop.run_in_executor(self.load_thread, self._alias_version, uri)
                if version == self.info.version:
                    continue
                log.info(
                    "%s moved to version %s: loading it (version %s answers meanwhile)", uri, version, self.info.version
                )
                info, scorer = await loop.run_in_executor(self.load_thread, self._load_blocking, None)
            except Exception as error:  # the registry or the new model: keep serving the old one
                log.warning("cannot follow %s (still serving version %s): %s", uri, self.info.version, error)
                continue
            previous = self.info.version
            self._serve(info, scorer)
            log.info("serving %s version %s (was version %s)", info.model, info.version, previous)

    # --- request bodies ------------------------------------------------------------------------

    async def _read_body(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes:
        """The whole body, within the per-request and the all-requests limits (else Refused)."""
        limit = self.settings.limits.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refused(413, "PAYLOAD_TOO_LARGE", f"the body has {int(declared)} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        task = self._body_deadlines.enter()
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refused(499, "CLIENT_CLOSED", "the client went away")
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    self._buffered += len(chunk)
                    if size > limit:
                        raise Refused(413, "PAYLOAD_TOO_LARGE", f"the body has more than {limit} bytes")
                    if self._buffered > self.settings.max_buffered_bytes:
                        raise Refused(503, "OVERLOADED", "the server holds too many request bodies; retry shortly")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except asyncio.CancelledError:
            if not self._body_deadlines.expired(task):
                raise
            seconds = self._body_deadlines.seconds
            raise Refused(408, "REQUEST_TIMEOUT", f"the body was not received within {seconds:g} s") from None
        finally:
            self._body_deadlines.leave(task)
            self._buffered -= size

    def _checked_json(self, request: RequestColumns, exact: Callable[[], RequestColumns]) -> CheckedRows:
        """The request's rows through the contract: the fast check, else the arrow check (re-reading exactly)."""
        refuse_wide(len(request.columns), self.settings.limits.max_columns)
        refuse_long(request.rows, self.settings.limits.max_rows)
        if self.check is None:
            table = columns_table(request)
            if table.num_rows == 0:
                raise InvalidRequest("no rows to score")
            return CheckedRows({}, table.num_rows, table)
        checked = self.check.fast_checked_rows(request)
        if checked is not None:
            return checked
        return self.check.checked_table(columns_table(exact()))

    def _checked_table(self, table: Any) -> CheckedRows:
        if self.check is None:
            if table.num_rows == 0:
                raise InvalidRequest("no rows to score")
            return CheckedRows({}, table.num_rows, table)
        return self.check.checked_table(table)

    # --- prediction endpoints ------------------------------------------------------------------

    async def _predict(self, rows: CheckedRows) -> Predictions:
        """The rows' predictions; in flight from here (queued or predicted) until they return."""
        assert self.batcher is not None
        self.metrics.in_flight.inc()
        try:
            return await self.batcher.submit(rows, rows.rows)
        finally:
            self.metrics.in_flight.dec()

    def _ready_or_refuse(self) -> None:
        if self.scorer is None or self.batcher is None:
            raise Refused(503, "NOT_READY", "the model is not loaded yet; retry when /ready answers 200")

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _send(send, 405, _json({"error_code": "METHOD_NOT_ALLOWED", "message": "POST /invocations"}))
            return
        started = time.perf_counter()
        headers = _headers(scope)
        request_id = self._request_id(headers)
        status = 500
        rows: CheckedRows | None = None
        predictions: Predictions | None = None
        extra = [(REQUEST_ID_HEADER, request_id)]
        try:
            try:
                rows = await self._invocation_rows(receive, headers)
                predictions = await self._predict(rows)
                status, body = 200, _json({"predictions": predictions.rows(), **echoed_ids(rows)})
            except Refused as refused:
                status, body = refused.status, _json({"error_code": refused.code, "message": refused.message})
                extra += refused.headers()
            except InvalidRequest as error:
                status, body = 400, _json(error.to_dict())
            except Exception as error:
                status, body = 500, self._model_failure(error, "error_code", "INTERNAL_ERROR")
            await _send(send, status, body, extra=extra)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe_request(status, seconds)
            if status == 200 and self.prediction_log.sampled():
                self._log_sample("/invocations", request_id, rows, predictions)

    async def _invocation_rows(self, receive: Receive, headers: dict[bytes, bytes]) -> CheckedRows:
        content_type = headers.get(b"content-type", JSON)
        media = "application/json" if content_type == JSON else _media_type(content_type)
        if media not in ("application/json", "text/csv"):
            raise Refused(
                415,
                "BAD_REQUEST",
                f"content type {content_type.decode('latin-1')!r} is not supported; use application/json or text/csv",
            )
        self._ready_or_refuse()
        assert self.batcher is not None
        self.batcher.announce()
        try:
            body = await self._read_body(receive, headers)
            limits = self.settings.limits
            if media == "text/csv":
                return self._checked_table(parse_csv_body(body, limits.max_columns, limits.max_rows))
            request = request_columns(decode_json(body, max_depth=limits.max_depth), limits.max_columns)
            return self._checked_json(
                request, lambda: request_columns(decode_json(body, exact=True, max_depth=limits.max_depth))
            )
        finally:
            self.batcher.settle()

    def _model_failure(self, error: Exception, key: str, code: str | None = None) -> bytes:
        log.error("prediction failed", exc_info=error)
        line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        message = f"prediction failed: {type(error).__name__}: {line}"[:300]
        return _json({key: code, "message": message} if code else {key: message})

    def _log_sample(
        self, endpoint: str, request_id: bytes, rows: CheckedRows | None, predictions: Predictions | None
    ) -> None:
        """Hand an answered request to the prediction log's writer (it only queues it)."""
        if rows is None or predictions is None:
            return
        from mlc.runtime.prediction_log.records import LoggedRequest

        inputs = rows.columns if rows.columns or rows.table is None else rows.table.to_pydict()
        self.prediction_log.submit(
            LoggedRequest(
                request_id=request_id.decode("latin-1"),
                source=endpoint,
                model=self.info.model if self.info else "",
                model_version=self.info.version if self.info else "",
                rows=rows.rows,
                inputs=inputs,
                outputs=predictions.columns,
            )
        )

    # --- Open Inference Protocol ---------------------------------------------------------------

    async def _v2_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/v2/models/{name}[/versions/{version}][/ready|/infer]`."""
        parts = scope["path"][len("/v2/models/") :].rstrip("/").split("/")
        name, rest = parts[0], parts[1:]
        version = ""
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        action = rest[0] if len(rest) == 1 else ("" if not rest else None)
        if action not in ("", "ready", "infer"):
            await _send(send, 404, _json({"error": f"no endpoint {scope['path']}"}))
            return
        if self.scorer is None or self.info is None:
            status = 400 if action == "ready" else 503  # the protocol: 4xx for "not ready"
            await _send(send, status, _json({"error": "the model is not loaded yet"}))
            return
        if name != self.model_name or (version and version != self.info.version):
            wanted = f"{name} version {version}" if version else name
            await _send(send, 404, _json({"error": f"unknown model {wanted}; this server serves {self.model_name}"}))
            return
        if action == "infer":
            await self._infer(scope, receive, send)
        elif action == "ready":
            await _send(send, 200, _json({"name": self.model_name, "ready": True}))
        else:
            from mlc.runtime.serve.open_inference import model_metadata

            metadata = model_metadata(self.model_name, self.info.version, self.settings.contract, self.scorer.outputs)
            await _send(send, 200, _json(metadata))

    async def _infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mlc.runtime.serve.open_inference import infer_response, parse_infer_request

        if scope["method"] != "POST":
            await _send(send, 405, _json({"error": "POST .../infer"}))
            return
        started = time.perf_counter()
        headers = _headers(scope)
        request_id = self._request_id(headers)
        status = 500
        rows: CheckedRows | None = None
        predictions: Predictions | None = None
        extra = [(REQUEST_ID_HEADER, request_id)]
        content_type = JSON
        try:
            try:
                assert self.batcher is not None and self.info is not None
                self.batcher.announce()
                try:
                    body = await self._read_body(receive, headers)
                    length = headers.get(b"inference-header-content-length")
                    if length is not None and not length.isdigit():
                        raise InvalidRequest("Inference-Header-Content-Length must be a number of bytes")
                    request = parse_infer_request(
                        body, int(length) if length else None, self.settings.contract, self.settings.limits.max_depth
                    )
                    rows = self._checked_json(request.columns, lambda: request.columns)
                finally:
                    self.batcher.settle()
                predictions = await self._predict(rows)
                body, header_length = infer_response(request, self.model_name, self.info.version, predictions)
                status = 200
                if header_length is not None:
                    content_type = b"application/octet-stream"
                    extra.append((b"inference-header-content-length", str(header_length).encode()))
            except Refused as refused:
                status, body = refused.status, _json({"error": refused.message})
                extra += refused.headers()
            except InvalidRequest as error:
                status, body = 400, _json({"error": error.message, **_violations(error)})
            except Exception as error:
                status, body = 500, self._model_failure(error, "error")
            await _send(send, status, body, content_type, extra)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe_request(status, seconds)
            if status == 200 and self.prediction_log.sampled():
                self._log_sample(scope["path"], request_id, rows, predictions)

    async def _server_metadata(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mlc.runtime.serve.open_inference import server_metadata

        await _send(send, 200, _json(server_metadata(self._version)))

    async def _live(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send(send, 200, _json({"live": True}))

    async def _v2_ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        ready = self.scorer is not None
        await _send(send, 200 if ready else 400, _json({"ready": ready}))

    # --- probes and metrics --------------------------------------------------------------------

    async def _ping(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.scorer is not None:
            await _send(send, 200, b"ok\n", b"text/plain; charset=utf-8")
        else:
            await _send(send, 503, b"loading\n", b"text/plain; charset=utf-8")

    async def _ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.scorer is not None and self.info is not None:
            await _send(send, 200, _json({"status": "ready", **self.info.to_dict()}))
        else:
            if self.load_error is not None:
                await _send(send, 503, _json({"status": "failed", "reason": self.load_error}))
            elif self.waiting is not None:
                await _send(send, 503, _json({"status": "waiting", "reason": self.waiting}))
            else:
                await _send(send, 503, _json({"status": "loading"}))

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send(send, 200, self.metrics.render(), METRICS_CONTENT_TYPE.encode())


def _prediction_log(settings: ServeSettings, metrics: ServerMetrics) -> PredictionLogWriter:
    """The server's prediction log writer (idle, sampling nothing, without a log URI)."""
    from mlc.runtime.prediction_log.records import input_types
    from mlc.runtime.prediction_log.writer import LogFiles, PredictionLogWriter

    rate = settings.log_sample_rate if settings.log_uri else 0.0
    return PredictionLogWriter(
        LogFiles(settings.log_uri or ""),
        rate,
        input_types(settings.contract),
        on_drop=metrics.log_dropped.inc,
        on_written=metrics.log_written.inc,
        flush_seconds=settings.log_flush_seconds,
    )


def _contract_parts(pyfunc: Any) -> Any:
    """The parts of a pyfunc whose Python model is mlc's `ContractModel`, else None."""
    try:
        return getattr(pyfunc.unwrap_python_model(), "parts", None)
    except Exception:  # not a Python-model pyfunc
        return None


def _media_type(content_type: bytes) -> str:
    return content_type.decode("latin-1").split(";", 1)[0].strip().lower()


def _violations(error: InvalidRequest) -> dict[str, Any]:
    body = error.to_dict()
    return {key: body[key] for key in ("violations", "violation_count") if key in body}


def create_app(settings: ServeSettings, fetch: RegistryFetch | None = None) -> ModelServer:
    """The ASGI app (a `ModelServer`: tests and `run_server` reach its state on it)."""
    return ModelServer(settings, fetch)


def run_server(
    settings: ServeSettings, host: str, port: int, graceful_timeout_seconds: int, max_connections: int = 2048
) -> int:
    """Serve until SIGTERM/SIGINT (then ended by that signal); 1 if the model did not load."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Forked first, before uvicorn opens its socket or anything starts a thread.
    registry = settings.model_uri.startswith("models:/")
    fetch = RegistryFetch(settings.model_uri, settings.tracking_uri) if registry else None
    import uvicorn

    from mlc.runtime.serve.header_deadline import header_deadline_protocol

    app = create_app(settings, fetch)
    served: Any = app
    sockets = None
    if settings.access is not None:
        from mlc.runtime.serve.access import AccessGuard, listening_sockets

        served = AccessGuard(app, settings.access, settings.metric_names)
        sockets = listening_sockets(host, [port, settings.access.metrics_port], max_connections)
    server = uvicorn.Server(
        uvicorn.Config(
            served,
            host=host,
            port=port,
            log_level="info",
            access_log=False,  # per-request lines cost throughput; /metrics has the counts
            # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a sidecar could then pick
            # any client address. The client is `access.trusted_proxies`' to decide (`access.py`).
            proxy_headers=False,
            timeout_graceful_shutdown=graceful_timeout_seconds,
            limit_concurrency=max_connections,
            backlog=max_connections,
            lifespan="on",
            http=header_deadline_protocol(settings.limits.header_timeout_seconds),
        )
    )

    def stop() -> None:
        server.should_exit = True

    app.on_fatal = stop
    try:
        server.run(sockets=sockets)
    finally:
        if app.fetch is not None:
            app.fetch.remove()
    return 1 if app.load_error is not None else 0
