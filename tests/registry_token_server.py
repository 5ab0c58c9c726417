"""A token server for a real `docker-registry` in the tests: the registry's Bearer token flow.

`TokenSigner` makes an RSA key and a self-signed certificate with the `openssl` CLI and mints the
JWTs distribution accepts (RS256; the header's `x5c` carries the certificate, which the registry
checks against its `rootcertbundle`). `TokenServer` answers `GET /token?service=&scope=` on
127.0.0.1 from a thread, granting an anonymous caller exactly the scopes it asks for, and records
every query so a test can check what the client sent. Standard library + `openssl` only.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

OPENSSL = shutil.which("openssl")
TOKEN_PATH = "/token"
TOKEN_LIFETIME_SECONDS = 300

# What the token server answers: a valid token, an HTTP 500, or a well-formed token signed by
# a key the registry does not trust (so the registry refuses it on the retry).
TokenAnswer = Literal["valid", "http-500", "untrusted-signature"]


def _base64url(data: bytes) -> str:
    """JOSE base64url: no padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _openssl() -> str:
    if OPENSSL is None:
        raise RuntimeError("openssl not installed")
    return OPENSSL


def parse_scope(scope: str) -> dict[str, object]:
    """`repository:library/python:pull,push` -> the token's `access` entry for it."""
    resource_type, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return {"type": resource_type, "name": name, "actions": [a for a in actions.split(",") if a]}


@dataclass(frozen=True)
class TokenSigner:
    """An RSA key and its self-signed certificate (PEM files) that sign registry tokens."""

    key_pem: Path
    cert_pem: Path
    issuer: str

    @classmethod
    def create(cls, directory: Path, issuer: str) -> TokenSigner:
        """A fresh key + certificate in `directory` (`openssl req -x509`, one day, no passphrase)."""
        directory.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = directory / "key.pem", directory / "cert.pem"
        request_self_signed = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={issuer}"]
        subprocess.run(
            [_openssl(), *request_self_signed, "-keyout", str(key_pem), "-out", str(cert_pem)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return cls(key_pem, cert_pem, issuer)

    def mint(self, service: str, access: list[dict[str, object]], subject: str = "") -> str:
        """A compact JWS the registry accepts for `service`, granting `access`."""
        certificate_der = ssl.PEM_cert_to_DER_cert(self.cert_pem.read_text(encoding="ascii"))
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(certificate_der).decode("ascii")]}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": service,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = ".".join(_base64url(json.dumps(part).encode()) for part in (header, claims))
        # RS256 is RSASSA-PKCS1-v1_5 over SHA-256: exactly what `openssl dgst -sha256 -sign` emits.
        signature = subprocess.run(
            [_openssl(), "dgst", "-sha256", "-sign", str(self.key_pem)],
            input=signing_input.encode("ascii"),
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        return f"{signing_input}.{_base64url(signature)}"


@dataclass
class TokenServer:
    """`GET /token` on 127.0.0.1 for a registry configured with `service` and `signer.issuer`."""

    signer: TokenSigner
    untrusted_signer: TokenSigner
    service: str
    answer: TokenAnswer = "valid"
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @property
    def realm(self) -> str:
        """The URL the registry's `auth.token.realm` names."""
        assert self._server is not None, "token server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{TOKEN_PATH}"

    @contextmanager
    def answering(self, answer: TokenAnswer) -> Iterator[None]:
        """Answer `answer` inside the block, valid tokens again after it."""
        self.answer = answer
        try:
            yield
        finally:
            self.answer = "valid"

    def _respond(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        if url.path != TOKEN_PATH:
            request.send_error(404)
            return
        query = parse_qs(url.query)
        self.queries.append(query)
        if self.answer == "http-500":
            request.send_error(500, "token service down (test)")
            return
        signer = self.untrusted_signer if self.answer == "untrusted-signature" else self.signer
        # Anonymous caller: grant exactly what the scopes ask (several may be space-separated).
        scopes = [scope for value in query.get("scope", []) for scope in value.split()]
        token = signer.mint(query.get("service", [""])[0], [parse_scope(s) for s in scopes])
        body = json.dumps({"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread."""
        token_server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token_server._respond(self)

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="registry-token-server", daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
