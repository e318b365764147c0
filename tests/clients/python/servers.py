"""Start a real server for the client tests: the workspace's ``staykv`` binary (built by
``cargo build``; override with STAYKV_BIN) or Debian's ``redis-server``, on a free loopback
port with a temporary data directory; ``stop()`` kills it and removes the directory.

``start("redis")`` returns None when redis-server is not installed (the test skips, saying
why), unless STAYKV_REQUIRE_REDIS=1, when it raises: CI cannot pass by skipping.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAYKV_BIN = Path(os.environ.get("STAYKV_BIN", HERE / "../../../target/debug/staykv")).resolve()
SKIP_REASON = "redis-server is not installed (apt-get install redis-server, or run ./scripts/test)"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).split(b"\r\n")[0]
    except OSError:
        return None


class Server:
    def __init__(self, kind, port, process, root):
        self.kind, self.port, self.process, self.root = kind, port, process, root

    def log(self):
        path = Path(self.root) / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start(kind):
    if kind == "redis" and shutil.which("redis-server") is None:
        if os.environ.get("STAYKV_REQUIRE_REDIS") == "1":
            raise RuntimeError(SKIP_REASON + "; STAYKV_REQUIRE_REDIS=1 forbids skipping")
        return None
    if kind == "staykv" and not STAYKV_BIN.exists():
        raise RuntimeError(f"{STAYKV_BIN} does not exist: run `cargo build` first (or set STAYKV_BIN)")
    root = tempfile.mkdtemp(prefix=f"staykv-py-{kind}-")
    log_path = Path(root) / "server.log"
    for _attempt in range(8):
        port = _free_port()
        if kind == "staykv":
            argv = [str(STAYKV_BIN), "--port", str(port), "--http-port", "0", "--dir", os.path.join(root, "data")]
        else:
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", root]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "NO_COLOR": "1"})
        server = Server(kind, port, process, root)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if _ping(port) == b"+PONG":
                return server
            time.sleep(0.02)
        if process.poll() is None:
            server.stop()
            raise RuntimeError(f"{kind} did not answer PING within 30 s; log:\n{server.log()}")
        text = server.log()
        if "in use" not in text and "cannot listen" not in text:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"{kind} exited with {process.returncode} before answering PING; log:\n{text}")
    raise RuntimeError(f"{kind}: no free port after 8 attempts")
