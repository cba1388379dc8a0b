"""A local SQS (and S3) for the tests: moto's server in a subprocess on loopback
(tests/fakes/moto_server.py: moto with its SQS receive made linear),
spoken to by the real boto3 client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    # Credentials moto accepts; nothing here can reach AWS.
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,  # where `tests` is a package
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto's SQS server did not start") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_endpoint(sqs_endpoint: str) -> str:
    """A local S3 (Supabase Storage's S3-compatible endpoint in the tests): moto's
    server answers every service it mocks on the one port."""
    return sqs_endpoint


@pytest.fixture
def sqs_client(sqs_endpoint: str) -> Any:
    from orchestrate.aws.sqs import sqs_client as make

    return make("us-east-1", sqs_endpoint)


@pytest.fixture
def make_queue(sqs_client: Any) -> Iterator[Any]:
    """``make_queue(visibility=2) -> url``: a fresh queue, deleted after the test."""
    urls: list[str] = []

    def make(visibility: int = 2) -> str:
        url = sqs_client.create_queue(QueueName=f"steps-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
        urls.append(url)
        return str(url)

    yield make
    for url in urls:
        sqs_client.delete_queue(QueueUrl=url)
