"""The model server: an ASGI app (starlette) and how uvicorn runs it.

- `POST /invocations`: MLflow's scoring formats (`payload.py`) -> contract check
  (`validation.py`, 400 naming row, column and what is valid) -> micro-batch (`batching.py`)
  -> `{"predictions": [...]}`. 503 until the model is loaded; 500 (short message) when the
  model itself fails.
- `GET /ping`: liveness, 200 whenever the process serves.
- `GET /ready`: readiness, 200 once the model is loaded, 503 before.
- `GET /metrics`: Prometheus text (`metrics.py`).

The model loads on the model thread after the server starts listening, so probes answer at once.
A model that fails to load stops the server with exit 1 (the pod restarts and its log says why).
SIGTERM: uvicorn stops accepting connections and waits (up to `graceful_timeout_seconds`) for
in-flight requests, whose queued frames the batcher still predicts; then uvicorn re-raises the
signal, so the process ends as killed by SIGTERM (143), like any process asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mlc.runtime.contract.config import Contract
from mlc.runtime.serve.batching import MicroBatcher
from mlc.runtime.serve.metrics import ServerMetrics
from mlc.runtime.serve.payload import model_frame, parse_csv_body, parse_json_body, predictions_json
from mlc.runtime.serve.served_model import ModelError, ModelInfo, load_model, predict_frames, resolve_model
from mlc.runtime.serve.validation import InvalidRequest, validate_rows

log = logging.getLogger("mlc.runtime.serve")

CONTENT_TYPES = ("application/json", "text/csv")


@dataclass(frozen=True)
class ServeSettings:
    model_uri: str
    tracking_uri: str
    contract: Contract | None
    metric_names: dict[str, str] = field(default_factory=dict)
    max_batch_rows: int = 64
    max_wait_ms: float = 5.0


@dataclass
class ServerState:
    """What the handlers share: the loaded model (None until ready) and the metrics."""

    settings: ServeSettings
    metrics: ServerMetrics
    model: Any = None
    info: ModelInfo | None = None
    load_error: str | None = None
    batcher: MicroBatcher | None = None
    on_fatal: Callable[[], None] = lambda: None


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _request_table(content_type: str, body: bytes) -> Any:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/csv":
        return parse_csv_body(body)
    return parse_json_body(body)


def _observe_output(metrics: ServerMetrics, output: Any) -> None:
    """Prediction distribution: probability columns when the model has them, else numeric predictions."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        columns = [c for c in output.columns if str(c).startswith("probability")] or [
            c for c in output.columns if pd.api.types.is_numeric_dtype(output[c])
        ]
        for column in columns:
            metrics.observe_predictions(str(column), output[column].to_numpy(dtype=np.float64, na_value=np.nan))
    else:
        values = np.asarray(output)
        if values.dtype.kind in "fiub":
            metrics.observe_predictions("prediction", values.reshape(len(values), -1)[:, 0])


async def _answer(state: ServerState, request: Request) -> Response:
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";", 1)[0].strip().lower() not in CONTENT_TYPES:
        return _error(
            415, f"content type {content_type!r} is not supported; use application/json or text/csv", "BAD_REQUEST"
        )
    if state.batcher is None or state.model is None:
        return _error(503, "the model is not loaded yet; retry when /ready answers 200", "NOT_READY")
    state.batcher.announce()
    try:
        table = _request_table(content_type, await request.body())
        contract = state.settings.contract
        if contract is not None and contract.features:
            table = validate_rows(table, contract)
        if table.num_rows == 0:
            raise InvalidRequest("no rows to score")
        frame = model_frame(table)
    except InvalidRequest as error:
        return JSONResponse(error.to_dict(), status_code=400)
    finally:
        state.batcher.settle()
    try:
        output = await state.batcher.submit(frame, len(frame))
    except Exception as error:  # the model's own failure: a short line, the traceback in the log
        log.exception("prediction failed")
        line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return _error(500, f"prediction failed: {type(error).__name__}: {line}"[:300], "INTERNAL_ERROR")
    _observe_output(state.metrics, output)
    return Response(predictions_json(output), media_type="application/json")


def create_app(settings: ServeSettings) -> Starlette:
    """The ASGI app; `app.state.server` is the ServerState (tests and `run_server` reach it there)."""
    state = ServerState(settings, ServerMetrics(settings.metric_names))
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlc-model")

    async def invocations(request: Request) -> Response:
        metrics = state.metrics
        started = time.perf_counter()
        metrics.in_flight.add(1)
        status = 500
        try:
            response = await _answer(state, request)
            status = response.status_code
            return response
        finally:
            metrics.in_flight.add(-1)
            metrics.duration.observe(time.perf_counter() - started, str(status))
            metrics.requests.inc(str(status))

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def ready(request: Request) -> Response:
        if state.model is not None:
            info = state.info.to_dict() if state.info else {}
            return JSONResponse({"status": "ready", **info})
        return JSONResponse({"status": "loading" if state.load_error is None else "failed"}, status_code=503)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def load() -> tuple[ModelInfo, Any]:
        started = time.perf_counter()
        info = resolve_model(settings.model_uri, settings.tracking_uri)
        model = load_model(info)
        label = f"{info.model} version {info.version}" if info.version else info.uri
        log.info("loaded %s from %s in %.1fs", label, info.uri, time.perf_counter() - started)
        return info, model

    async def load_in_background(loop: asyncio.AbstractEventLoop) -> None:
        try:
            state.info, model = await loop.run_in_executor(model_thread, load)
        except ModelError as error:
            state.load_error = str(error)
            log.error("error: %s", error)
            state.on_fatal()
            return
        metrics = state.metrics
        metrics.model_info.set(
            1, state.info.model, state.info.version, state.info.alias, state.info.run_id, state.info.uri
        )
        state.model = model

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def predict_batch(frames: list[Any]) -> list[Any]:
            return predict_frames(state.model, frames)

        def run_blocking(function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            state.metrics.model_calls.inc()
            state.metrics.batch_rows.observe(sum(len(frame) for frame in args[0]))
            return loop.run_in_executor(model_thread, function, *args)

        state.batcher = MicroBatcher(predict_batch, run_blocking, settings.max_batch_rows, settings.max_wait_ms)
        state.batcher.start()
        loading = loop.create_task(load_in_background(loop))
        try:
            yield
        finally:
            loading.cancel()
            await state.batcher.stop()
            model_thread.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.server = state
    return app


def run_server(settings: ServeSettings, host: str, port: int, graceful_timeout_seconds: int) -> int:
    """Serve until SIGTERM/SIGINT (then ended by that signal); 1 if the model did not load."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=False,  # per-request lines cost throughput; /metrics has the counts
            timeout_graceful_shutdown=graceful_timeout_seconds,
            lifespan="on",
        )
    )
    state: ServerState = app.state.server

    def stop() -> None:
        server.should_exit = True

    state.on_fatal = stop
    server.run()
    return 1 if state.load_error is not None else 0
