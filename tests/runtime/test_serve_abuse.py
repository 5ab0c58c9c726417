"""The real server under abusive clients, with its memory sampled: one client cannot knock it over.

One `mlc-runtime serve` process gets, all at once: malformed bodies (hostile JSON and CSV, wrong
encodings), huge bodies (declared and streamed past the limit), abandoned requests (headers and
part of a body, then the socket closed), slow bodies (a byte now and then), and connections
that send nothing or half their headers and wait. Meanwhile a well-behaved client keeps
predicting and a sampler reads the server's resident memory from /proc. Afterwards: every
abusive request got a 4xx or was cut (silent connections at the header deadline), none was
counted as a 5xx (the error-rate alert and the canary abort read that), the log has no
traceback, the in-flight gauge (what KEDA scales on) is back to 0 and never counted the slow or
abandoned sockets, the well-behaved client was answered within 2 s throughout, and memory
stayed bounded.

About 60 s, a server start included.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from served_project import get, metric_value, post, running_server, toy_rows, train_served_project

BODY_LIMIT_MB = 1.0
BODY_TIMEOUT_SECONDS = 2
HEADER_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("abused")
    return root, train_served_project(root)


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def malformed_bodies() -> list[tuple[str, bytes]]:
    """(content type, body): each must be answered 4xx."""
    wide = ",".join(f"c{i}" for i in range(100_000)).encode()
    names = [f"c{i}" for i in range(50_000)]
    return [
        ("application/json", b'{"dataframe_records": [{"x": NaN, "n": 1, "color": "red"}]}'),
        ("application/json", b'{"dataframe_records": [{"x": Infinity, "n": 1, "color": "red"}]}'),
        ("application/json", b'{"dataframe_records": [{"x": 1e400, "n": 1, "color": "red"}]}'),
        ("application/json", b'{"dataframe_records": [{"x": 1, "n": ' + b"9" * 5000 + b', "color": "red"}]}'),
        ("application/json", b'{"dataframe_records": [{"x": 1, "n": 1, "color": "\\ud800"}]}'),
        ("application/json", b"[" * 100_000 + b"]" * 100_000),
        ("application/json", b'{"dataframe_records": [{"x": 1, "n": 1, "color": "red"}'),
        ("application/json", b"\xff\xfe{\x00}"),
        ("text/csv", b"x,x,n,color\n1,2,1,red\n"),
        ("text/csv", wide + b"\n" + b",".join(b"1" for _ in range(100_000)) + b"\n"),
        ("text/csv", b"x,n,color\n\xff\xff,1,red\n"),
        ("application/json", json.dumps({"dataframe_split": {"columns": names, "data": [[1] * 50_000]}}).encode()),
        ("application/json", json.dumps({"dataframe_records": [dict.fromkeys(names, 1)]}).encode()),
        ("application/xml", b"<rows/>"),
    ]


async def answer_status(reader: asyncio.StreamReader, timeout: float) -> int:
    """The response's status; 0 when the connection was cut without one.

    A server that answers before reading the whole body (413, 408) and closes makes the kernel
    reset the connection, which can drop the answer on the client's side: the server's metrics
    count what it answered.
    """
    try:
        answer = await asyncio.wait_for(reader.read(), timeout)
    except ConnectionError:  # reset, or a broken pipe while the client was still sending
        return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def exchange(port: int, raw: bytes, timeout: float = 30) -> int:
    """Send raw bytes; the response's status (0 when cut without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await answer_status(reader, timeout)
    finally:
        writer.close()


def request_head(length: int | None, content_type: str = "application/json") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"{framing}\r\nConnection: close\r\n\r\n"
    ).encode()


async def malformed(port: int, rounds: int) -> list[tuple[int, int]]:
    """(which body, status) of each malformed request."""
    bodies = malformed_bodies()
    return [
        (index, await exchange(port, request_head(len(body), kind) + body))
        for _ in range(rounds)
        for index, (kind, body) in enumerate(bodies)
    ]


async def huge(port: int) -> list[int]:
    declared = await exchange(port, request_head(2**40) + b"{")
    streamed = await chunked_until_refused(port, 64 * 1024 * 1024)
    return [declared, streamed]


async def chunked_until_refused(port: int, total: int) -> int:
    """Stream a chunked body of `total` bytes (stopping when the server answers); its status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(None))
        chunk = b" " * 65536
        sent = 0
        while sent < total:
            try:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            except ConnectionError:
                break
            sent += len(chunk)
            if reader.at_eof():  # answered and closed
                break
        return await answer_status(reader, 30)
    finally:
        writer.close()


async def abandoned(port: int, count: int) -> None:
    """Headers and part of the body, then the socket closed."""

    async def one() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_head(1000) + b'{"dataframe_records": [')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()

    await asyncio.gather(*(one() for _ in range(count)))


async def silent(port: int, count: int, first_bytes: bytes) -> list[float]:
    """Connections that send `first_bytes` (nothing, or half a request) and then wait: seconds
    until the server closed each (-1: still open after four times the header timeout)."""

    async def one() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        try:
            writer.write(first_bytes)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 4 * HEADER_TIMEOUT_SECONDS)
        except TimeoutError:
            return -1.0
        except ConnectionResetError:
            pass
        finally:
            writer.close()
        return time.monotonic() - started

    return await asyncio.gather(*(one() for _ in range(count)))


async def slow(port: int, count: int) -> list[int]:
    """A byte every 0.3 s of a 1000-byte body: the server must cut them at its body timeout."""

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request_head(1000))
            started = time.monotonic()
            while time.monotonic() - started < 4 * BODY_TIMEOUT_SECONDS:
                try:
                    writer.write(b" ")
                    await writer.drain()
                except ConnectionError:
                    return 0  # cut by the server
                try:
                    return await answer_status(reader, 0.3)
                except TimeoutError:
                    continue
            return -1  # still reading after four times the timeout
        finally:
            writer.close()

    return await asyncio.gather(*(one() for _ in range(count)))


def test_one_abusive_client_cannot_knock_the_server_over(project) -> None:
    root, config = project
    args = ("--max-body-mb", str(BODY_LIMIT_MB), "--body-timeout", str(BODY_TIMEOUT_SECONDS))
    args += ("--header-timeout", str(HEADER_TIMEOUT_SECONDS))
    with running_server(root, config, *args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        good = json.dumps({"dataframe_records": toy_rows(5, seed=4)})
        for _ in range(20):  # warm: the allocator's steady state before the baseline
            assert post(server.url + "/invocations", good)[0] == 200
        baseline = resident_bytes(server.process.pid)
        peak = baseline
        in_flight_seen = 0.0
        latencies: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak, in_flight_seen
            while not stop.is_set():
                peak = max(peak, resident_bytes(server.process.pid))
                text = get(server.url + "/metrics")[1].decode()
                in_flight_seen = max(in_flight_seen, metric_value(text, "mlc_requests_in_flight"))
                time.sleep(0.05)

        def behave() -> None:
            while not stop.is_set():
                started = time.monotonic()
                status, _ = post(server.url + "/invocations", good, timeout=10)
                latencies.append(time.monotonic() - started)
                assert status == 200
                time.sleep(0.02)

        async def abuse() -> tuple[list[tuple[int, int]], list[int], list[int], list[float]]:
            bad, big, slowed, _, idle, half = await asyncio.gather(
                malformed(port, rounds=3),
                huge(port),
                slow(port, 40),
                abandoned(port, 200),
                silent(port, 100, b""),
                silent(port, 100, b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"),
            )
            return bad, big, slowed, idle + half

        threads = [threading.Thread(target=sample), threading.Thread(target=behave)]
        for thread in threads:
            thread.start()
        try:
            bad, big, slowed, silenced = asyncio.run(abuse())
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

        assert all(400 <= status < 500 for _, status in bad), [(i, status) for i, status in bad if status >= 500]
        assert big[0] == 413 and big[1] in (413, 0), big  # 0: the answer lost to the reset (counted below)
        assert set(slowed) <= {408, 0}, slowed  # 0: the 408 lost to the reset (counted below)
        # Silent and half-sent headers are closed at the header deadline, not held for ever.
        assert all(HEADER_TIMEOUT_SECONDS * 0.9 < seconds < 3 * HEADER_TIMEOUT_SECONDS for seconds in silenced), (
            silenced
        )
        metrics = get(server.url + "/metrics")[1].decode()
        server_errors = {
            line
            for line in metrics.splitlines()
            if line.startswith('mlc_requests_total{code="5') and float(line.rpartition(" ")[2]) > 0
        }
        assert server_errors == set(), server_errors
        assert metric_value(metrics, "mlc_requests_total", 'code="413"') == 2
        assert metric_value(metrics, "mlc_requests_total", 'code="408"') == len(slowed)
        assert metric_value(metrics, "mlc_requests_in_flight") == 0
        # The slow and abandoned sockets (240) never counted as requests being predicted.
        assert in_flight_seen < 20, in_flight_seen
        # Under 2 s on a loaded 2-core CI machine (about 0.4-0.7 s alone); a 100,000-column CSV used
        # to stall everyone for 11.6 s.
        assert latencies and max(latencies) < 2.0, f"slowest well-behaved request {max(latencies):.2f} s"
        grown = peak - baseline
        assert grown < 200 * 1024 * 1024, f"resident memory grew {grown / 2**20:.0f} MiB"
        assert "Traceback" not in server.log(), server.log()[-3000:]
        assert post(server.url + "/invocations", good)[0] == 200
        print(
            f"\nabuse: {len(bad)} malformed, 2 huge, {len(slowed)} slow, 200 abandoned, {len(silenced)} silent; "
            f"well-behaved {len(latencies)} requests, slowest {max(latencies) * 1000:.0f} ms; "
            f"RSS {baseline / 2**20:.0f} -> peak {peak / 2**20:.0f} MiB; in-flight peak {in_flight_seen:.0f}"
        )
