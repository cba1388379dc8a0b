"""Exports saved as files in Supabase Storage, through its S3-compatible endpoint
(``<project>/storage/v1/s3``, path-style, SigV4), with the real boto3 client.

An object's key is ``<user_id>/runs/<run_id>.<ext>``: built here from the caller's id
and a run they were shown, never from anything the request names, so a user's export
can only ever land under their own prefix. The answer is a presigned GET URL valid for
``storage_url_ttl`` seconds. The S3 keys bypass Storage's RLS: they are for the server
only and are never sent to a client."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from .errors import OrchestrateError
from .settings import Settings

log = logging.getLogger("orchestrate.storage")

CONNECT_TIMEOUT = 3.0  # seconds: an outage answers quickly instead of holding a request
READ_TIMEOUT = 10.0


class StorageUnavailable(OrchestrateError):
    type = "storage-unavailable"


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    expires_at: dt.datetime
    size: int


def object_key(user_id: str, run_id: str, ext: str) -> str:
    return f"{user_id}/runs/{run_id}.{ext}"


class ExportStorage:
    """The configured bucket. Thread-safe (boto3 clients are); the client is made once."""

    def __init__(self, settings: Settings) -> None:
        if not settings.stores_exports:
            raise ValueError("no Storage bucket configured")
        self.settings = settings
        self.bucket = str(settings.storage_bucket)
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                s = self.settings
                self._client = boto3.client(
                    "s3",
                    endpoint_url=s.storage_s3_endpoint,
                    region_name=s.storage_region or s.aws_region,
                    aws_access_key_id=s.storage_access_key_id,
                    aws_secret_access_key=s.storage_secret_access_key,
                    config=Config(
                        signature_version="s3v4",
                        s3={"addressing_style": "path"},  # what Supabase Storage's S3 endpoint expects
                        connect_timeout=CONNECT_TIMEOUT,
                        read_timeout=READ_TIMEOUT,
                        retries={"max_attempts": 2, "mode": "standard"},
                    ),
                )
            return self._client

    def save(self, key: str, body: bytes, content_type: str, file_name: str) -> StoredFile:
        """Write the object (replacing an earlier export of the same run) and presign
        a download. Raises StorageUnavailable when Storage cannot be used."""
        from botocore.exceptions import BotoCoreError, ClientError

        ttl = self.settings.storage_url_ttl
        try:
            s3 = self.client()
            s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                ContentDisposition=f'attachment; filename="{file_name}"',
            )  # fmt: skip
            url = s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl)
        except (BotoCoreError, ClientError) as exc:
            # The cause is the operator's to fix (keys, bucket, outage): logged, not shown.
            log.warning("storing %s in bucket %s failed: %s", key, self.bucket, exc)
            raise StorageUnavailable("Storage is unavailable: the export was not stored; download it instead") from None
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=ttl)
        return StoredFile(key, str(url), expires, len(body))
