"""myapp: the tiny demo web app of Kubernetes tutorials (after wangyanglinux/myapp).

GET /              -> Hello MyApp | Version: <MYAPP_VERSION> | <a href="hostname.html">Pod Name</a>
GET /hostname.html -> the pod's name (POD_NAME, else HOSTNAME, else the UTS hostname)

Listens on POD_IP (default 127.0.0.1: pods live on loopback IPs) and PORT (default 80). One access
log line per request on stdout. SIGTERM (and SIGINT) end it at once with exit code 0.
"""

import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("MYAPP_VERSION", "v1")
INDEX = f'Hello MyApp | Version: {VERSION} | <a href="hostname.html">Pod Name</a>\n'


def pod_name() -> str:
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()


class Handler(BaseHTTPRequestHandler):
    server_version = "myapp/" + VERSION
    sys_version = ""

    def _body(self) -> tuple[int, str]:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return 200, INDEX
        if path == "/hostname.html":
            return 200, pod_name() + "\n"
        return 404, "404 Not Found\n"

    def _answer(self, with_body: bool) -> None:
        code, text = self._body()
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, format: str, *args: object) -> None:
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        print(f'{self.client_address[0]} - - [{stamp}] {format % args}', flush=True)


def stop(signum: int, frame: object) -> None:
    print(f"received signal {signum}, exiting", flush=True)
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = os.environ.get("POD_IP") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 80)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"myapp {VERSION} listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
