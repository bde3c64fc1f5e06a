"""Fixtures for the detection tests: a directory for the corpus, and a local HTTP server
that speaks OpenAI's chat-completions API, so the real ``openai`` client and its request
path run without a network.

The fake server records every request (path, headers, JSON body) and answers from a script
of responses queued by the test: a structured answer, an HTTP error, a slow answer, or a
body that is not JSON. An unscripted request gets HTTP 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON the detection put in the user message."""
        return json.loads(self.body["messages"][-1]["content"])


def completion(content: str, *, finish_reason: str = "stop", refusal: str | None = None) -> bytes:
    """A chat.completion body whose message is ``content``."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
    ).encode()


class FakeOpenAI:
    """The server's state: what it received, and what it will answer next."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[Scripted] = deque()
        self.base_url = ""
        self._lock = threading.Lock()

    def answer(self, content: dict | str, **options) -> None:
        text = content if isinstance(content, str) else json.dumps(content)
        self.script.append(Scripted(body=completion(text, **options)))

    def fail(self, status: int, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(
                Scripted(
                    status=status,
                    body=json.dumps(
                        {"error": {"message": "boom", "type": "server_error"}}
                    ).encode(),
                    # The openai client honours retry-after-ms: keeps the retry fast.
                    headers={"retry-after-ms": "10"},
                )
            )

    def slow(self, delay: float, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(Scripted(body=completion("{}"), delay=delay))

    def raw(self, body: bytes, status: int = 200) -> None:
        self.script.append(Scripted(status=status, body=body))

    def _next(self, received: Received) -> Scripted:
        with self._lock:
            self.received.append(received)
            if self.script:
                return self.script.popleft()
        return Scripted(status=500, body=b'{"error": {"message": "no scripted answer"}}')


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake._next(Received(self.path, headers, body))
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the slow-answer test): nothing to answer

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # A short poll interval: shutdown() waits up to one interval.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    return directory
