"""Connecting to a Dask scheduler by address: the whole connection keeps to ``connect_timeout``.

A port that accepts TCP connections but is not a Dask scheduler (a dashboard, a proxy, a
wedged scheduler) must fail within the timeout, with one line naming the address, instead of
waiting forever for a handshake.  The calls run in subprocesses with a hard time limit, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import losskit  # noqa: E402
from losskit.evaluation import EvaluationError  # noqa: E402

LOSSKIT = Path(sys.executable).with_name("losskit")
TIMEOUT = 2.0
MARGIN = 15.0  # process start, imports and the way out, well above what they take


class _Listener:
    """A TCP server on localhost that accepts connections and then never answers (``silent``),
    answers bytes that are not Dask's protocol (``garbage``) or an HTTP error (``http``)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                if self.mode == "garbage":
                    conn.sendall(bytes(range(256)) * 4)
                elif self.mode == "http":
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    conn.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def inputs(tmp_path):
    np.save(tmp_path / "p.npy", np.linspace(0, 1, 50))
    np.save(tmp_path / "t.npy", np.linspace(1, 0, 50))
    return tmp_path / "p.npy", tmp_path / "t.npy"


def _run(args):
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT + MARGIN)
    return proc, time.monotonic() - start


@pytest.mark.parametrize("mode", ["silent", "garbage", "http"])
def test_cli_fails_within_the_timeout_on_a_port_that_is_not_a_scheduler(inputs, mode):
    listener = _Listener(mode)
    try:
        proc, elapsed = _run(
            [str(LOSSKIT), "evaluate", *map(str, inputs), "--loss", "mse", "--no-progress",
             "--scheduler", listener.address, "--connect-timeout", str(TIMEOUT)]
        )  # fmt: skip
    finally:
        listener.close()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("losskit evaluate: error: ") and listener.address in line, line
    assert elapsed < TIMEOUT + MARGIN


@pytest.mark.parametrize("mode", ["silent", "garbage"])
def test_python_call_raises_evaluation_error_within_the_timeout(inputs, mode):
    listener = _Listener(mode)
    code = (
        "import sys, losskit\n"
        "try:\n"
        f"    losskit.evaluate({str(inputs[0])!r}, {str(inputs[1])!r}, loss='mse', progress=False,\n"
        f"                     scheduler={listener.address!r}, connect_timeout={TIMEOUT})\n"
        "except losskit.EvaluationError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    try:
        proc, elapsed = _run([sys.executable, "-c", code])
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("EvaluationError ") and listener.address in proc.stdout, proc.stdout
    assert elapsed < TIMEOUT + MARGIN


def test_a_real_scheduler_is_used_and_a_worker_address_refused(inputs):
    with distributed.LocalCluster(
        n_workers=1,
        processes=False,
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
        silence_logs=logging.ERROR,
    ) as cluster:
        p, t = inputs
        result = losskit.evaluate(p, t, loss="mse", scheduler=cluster.scheduler_address, progress=False)
        assert result["mse"] == pytest.approx(float(losskit.mse(np.load(p), np.load(t))), rel=1e-12)
        worker = next(iter(cluster.workers.values())).address
        with pytest.raises(EvaluationError, match=rf"{worker} .*not a Dask scheduler"):
            losskit.evaluate(p, t, loss="mse", scheduler=worker, connect_timeout=TIMEOUT, progress=False)
