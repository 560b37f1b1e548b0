"""A real schema registry for the end-to-end suite: Apicurio Registry
(scripts/schema-registry) on free loopback ports, spoken to through its
Confluent-compatible API, as journeyd and any Confluent client would.

Its own client here uses urllib only, so the suite checks what journeyd
registered and looked up with code that is not journeyd's.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import fastavro

from harness import ROOT, free_port, wait_for

SCRIPT = ROOT / "scripts" / "schema-registry"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(Exception):
    """A non-2xx answer: its HTTP status and the registry's error code."""

    def __init__(self, status: int, body: str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        self.status = status
        self.error_code = parsed.get("error_code") if isinstance(parsed, dict) else None
        super().__init__(f"HTTP {status}: {body[:300]}")


class SchemaRegistry:
    """Apicurio Registry in a child process, in memory, empty at start.

    `url` is the base of the Confluent-compatible API, the value of
    journeyd's `schema_registry.url`."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.management_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/apis/ccompat/v7"
        self.log_path = log_dir / "schema-registry.log"
        self.log = open(self.log_path, "wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(SCRIPT), "run", str(self.port), str(self.management_port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for("Apicurio Registry to be ready", self._ready, 120, every=0.2)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        print(f"Apicurio Registry started in {self.startup_seconds:.1f}s on {self.url}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the schema registry exited with {self.process.returncode}:\n"
                f"{self.log_path.read_text(errors='replace')[-3000:]}")
        try:
            url = f"http://127.0.0.1:{self.management_port}/health/ready"
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RegistryError(e.code, e.read().decode(errors="replace")) from None

    def register(self, subject: str, schema: dict | str, schema_type: str | None = None,
                 references: list[dict] | None = None) -> int:
        """Registers a schema (Avro unless `schema_type` says otherwise)
        under `subject`; its id (the same id for a schema registered
        before)."""
        body = {"schema": schema if isinstance(schema, str) else json.dumps(schema)}
        if schema_type:
            body["schemaType"] = schema_type
        if references:
            body["references"] = references
        quoted = urllib.parse.quote(subject, safe="")
        return self._call("POST", f"/subjects/{quoted}/versions", body)["id"]

    def set_compatibility(self, subject: str, level: str):
        """The compatibility rule new versions of `subject` must pass."""
        quoted = urllib.parse.quote(subject, safe="")
        self._call("PUT", f"/config/{quoted}", {"compatibility": level})

    def schema(self, schema_id: int) -> dict:
        """The schema of `schema_id`, as parsed JSON."""
        return json.loads(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])

    def latest(self, subject: str) -> dict:
        """The latest version of `subject`: id, version, schema (parsed)."""
        quoted = urllib.parse.quote(subject, safe="")
        answer = self._call("GET", f"/subjects/{quoted}/versions/latest")
        return {**answer, "schema": json.loads(answer["schema"])}

    def subjects(self) -> list[str]:
        return self._call("GET", "/subjects")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def without_logical_types(schema):
    """`schema` (parsed JSON) with every logicalType dropped, so fastavro
    reads timestamps as the plain longs journeyd's JSON carries."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    return schema


class WriterSchemas:
    """Writer schemas by id, looked up in the registry the first time an id
    is asked for: a mapping for `harness.decode_confluent`."""

    def __init__(self, registry: SchemaRegistry):
        self.registry = registry
        self.schemas: dict[int, object] = {}

    def __getitem__(self, schema_id: int):
        if schema_id not in self.schemas:
            raw = self.registry.schema(schema_id)
            self.schemas[schema_id] = fastavro.parse_schema(without_logical_types(raw))
        return self.schemas[schema_id]
