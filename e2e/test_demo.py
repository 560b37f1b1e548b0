"""`journeyd demo` as a new user starts it: in a pseudo-terminal, with no
arguments but a free HTTP port. Within 10 seconds the live summary shows
numbers that change; /metrics answers; an outside Kafka client reads stage
changes from the printed bootstrap address; Ctrl-C ends it with exit 0."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
import urllib.request

from confluent_kafka import Consumer, TopicPartition

from harness import JOURNEYD, free_port

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process on a pseudo-terminal, its screen output collected."""

    def __init__(self, argv: list[str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ["RUST_LOG"] = "warn"
            os.execv(argv[0], argv)
        self.output = b""

    def read(self, seconds: float) -> bytes:
        """Reads whatever the child writes for `seconds`; returns that part."""
        start, deadline = len(self.output), time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        return self.output[start:]

    def text(self, part: bytes) -> str:
        return ANSI.sub(b"", part).decode(errors="replace")

    def ctrl_c(self):
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        return None

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def numbers(screen: str) -> list[str]:
    return re.findall(r"\d[\d,.]*", screen)


def test_the_demo_in_a_terminal_is_live_serves_metrics_and_stops_on_ctrl_c():
    port = free_port()
    term = Terminal([str(JOURNEYD), "demo", "--http-port", str(port)])
    try:
        first = term.text(term.read(10))
        match = re.search(r"bootstrap:\s+(\S+)", first)
        assert match, f"no bootstrap address printed:\n{first}"
        bootstrap = match.group(1)
        assert "stage" in first.lower(), f"no live summary within 10 s:\n{first[-2000:]}"
        later = term.text(term.read(3))
        assert later.strip(), "the summary stopped refreshing"
        assert numbers(later) != numbers(first[-len(later):]), "the numbers do not change"

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        consumed = [line for line in metrics.splitlines() if line.startswith("journeyd_events_consumed_total")]
        assert consumed, "journeyd_events_consumed_total is not exported"

        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-watcher",
                           "auto.offset.reset": "earliest"})
        reader.assign([TopicPartition("journey.stage-changes", 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = [m for m in reader.consume(100, timeout=0.5) if not m.error()]
            term.read(0)
        reader.close()
        assert got, "no stage change readable from the printed bootstrap address"
        assert b'"to_stage"' in got[0].value()

        term.ctrl_c()
        code = term.wait(30)
        assert code == 0, f"exit code {code} after Ctrl-C:\n{term.text(term.output[-2000:])}"
    finally:
        term.kill()
