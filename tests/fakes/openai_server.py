"""A local HTTP server that speaks OpenAI's chat completions, for the real SDK to call.

Each test scripts the answers: a queue of (status, body, headers); when the queue is
empty the server answers like a model would, honouring a JSON-schema response format."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, Any], dict[str, str]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def then(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> FakeOpenAI:
        self.script.append((status, body or {"error": {"message": f"scripted {status}", "type": "error"}}, headers or {}))
        return self

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.headers.clear()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        fmt = request.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            props = fmt["json_schema"]["schema"]["properties"]
            content = json.dumps({k: (["one", "two"] if v.get("type") == "array" else f"{k} value") for k, v in props.items()})
        else:
            content = "echo: " + request["messages"][-1]["content"]
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1,
            "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                fake.requests.append(body)
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, payload, headers = fake.script.popleft() if fake.script else (200, fake.answer(body), {})
                self._send(status, payload, headers)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
