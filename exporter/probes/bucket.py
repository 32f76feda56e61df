"""ProbeBucket: the one choke point through which every S3 request with a key is made.

Every method checks the key against the probe keyspace before any byte leaves the process; listing is only
ever of the probe dir. Nothing else in the exporter calls the S3 client's object APIs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from exporter.objstore import S3Config
from exporter.probes.keyspace import Keyspace


class ProbeBucket:
    def __init__(self, client: Any, s3: S3Config, keyspace: Keyspace, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout
        self.s3 = s3
        self.bucket = s3.bucket
        self.keyspace = keyspace
        self._write_args = self._sse_write_args() | self._metadata_args()
        self._read_args = self._sse_c_args()

    # -- SSE and metadata, as minio-go sends them -------------------------------------------------------
    def _sse_c_args(self) -> dict[str, Any]:
        sse = self.s3.sse_config
        if sse.type != "SSE-C":
            return {}
        key = Path(sse.encryption_key).read_bytes()
        return {
            "SSECustomerAlgorithm": "AES256",
            "SSECustomerKey": key,
        }

    def _sse_write_args(self) -> dict[str, Any]:
        sse = self.s3.sse_config
        if sse.type == "SSE-S3":
            return {"ServerSideEncryption": "AES256"}
        if sse.type == "SSE-KMS":
            args: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sse.kms_key_id}
            if sse.kms_encryption_context:
                ctx = json.dumps(sse.kms_encryption_context, separators=(",", ":")).encode()
                args["SSEKMSEncryptionContext"] = base64.b64encode(ctx).decode()
            return args
        return self._sse_c_args()

    def _metadata_args(self) -> dict[str, Any]:
        meta = dict(self.s3.put_user_metadata)
        args: dict[str, Any] = {}
        for k in list(meta):
            if k.lower() == "x-amz-storage-class":
                args["StorageClass"] = meta.pop(k)
        if meta:
            args["Metadata"] = meta
        return args

    # -- requests --------------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> dict[str, Any]:
        self.keyspace.require_inside(key)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode() if self.s3.send_content_md5 else None
        extra = {"ContentMD5": md5} if md5 else {}
        return dict(self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra, **self._write_args))

    def head(self, key: str) -> dict[str, Any]:
        self.keyspace.require_inside(key)
        return dict(self.client.head_object(Bucket=self.bucket, Key=key, **self._read_args))

    def get(self, key: str, byte_range: tuple[int, int] | None = None, limit: int = 4096) -> tuple[int, bytes]:
        """GET at most `limit` + 1 bytes of the body, within the operation timeout.

        Probe objects are tiny; a replaced (huge) canary or a server trickling bytes must cost neither memory
        nor a worker for minutes. The per-recv read timeout alone does not bound a trickle.
        """
        self.keyspace.require_inside(key)
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        answer = self.client.get_object(Bucket=self.bucket, Key=key, **extra, **self._read_args)
        deadline = time.monotonic() + self.timeout
        data = bytearray()
        with answer["Body"] as body:
            while len(data) <= limit:
                if time.monotonic() > deadline:
                    raise TimeoutError("object body not received within the operation timeout")
                chunk = body.read(1)  # probe objects are ~100 bytes: byte-wise keeps the deadline honest
                if not chunk:
                    break
                data += chunk
        return int(answer["ResponseMetadata"]["HTTPStatusCode"]), bytes(data)

    def list_probe_dir(self, recursive: bool = False, sub: str = "") -> list[dict[str, Any]]:
        """List (one page) under the probe dir, V1 or V2 as the objstore config says."""
        prefix = self.keyspace.base + sub
        if sub:
            self.keyspace.require_inside(prefix.rstrip("/"))
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if not recursive:
            args["Delimiter"] = "/"
        if self.s3.list_objects_version == "v1":
            answer = self.client.list_objects(**args)
        else:
            answer = self.client.list_objects_v2(**args)
        return list(answer.get("Contents", []))

    def list_probe_uploads(self) -> list[dict[str, Any]]:
        """Incomplete multipart uploads under the probe dir (one page)."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.keyspace.base)
        return [u for u in answer.get("Uploads", []) if u.get("Key", "").startswith(self.keyspace.base)]

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.keyspace.require_inside(key)
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def upload_multipart(self, key: str, body: bytes) -> None:
        """CreateMultipartUpload -> UploadPart -> CompleteMultipartUpload; abort (best effort) on failure."""
        self.keyspace.require_inside(key)
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._write_args)
        upload_id = upload["UploadId"]
        try:
            part = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body, **self._read_args
            )
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
            )
        except Exception:
            with contextlib.suppress(Exception):  # best effort, like minio-go's deferred abort
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def delete(self, key: str) -> int:
        """DeleteObject, only ever of a key inside the probe dir. Returns the HTTP status."""
        self.keyspace.require_inside(key)
        answer = self.client.delete_object(Bucket=self.bucket, Key=key)
        return int(answer["ResponseMetadata"]["HTTPStatusCode"])

    def bucket_location(self) -> str:
        answer = self.client.get_bucket_location(Bucket=self.bucket)
        return str(answer.get("LocationConstraint") or "us-east-1")
