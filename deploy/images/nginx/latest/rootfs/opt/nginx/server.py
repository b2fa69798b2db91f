"""A stand-in for nginx's default site: static files from /usr/share/nginx/html.

Listens on POD_IP (default 127.0.0.1) and PORT (default 80). An access-log line per request on
stdout, nginx's "combined" format. SIGTERM (fast shutdown, as nginx) and SIGINT exit 0 at once.
"""

import os
import signal
import sys
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.environ.get("NGINX_ROOT", "/usr/share/nginx/html")
VERSION = os.environ.get("NGINX_VERSION", "1.27.0")


class Handler(SimpleHTTPRequestHandler):
    server_version = "nginx/" + VERSION
    sys_version = ""

    def list_directory(self, path):  # type: ignore[no-untyped-def]
        # nginx's default site has autoindex off
        self.send_error(403, "Forbidden")
        return None

    def log_request(self, code: object = "-", size: object = "-") -> None:
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        agent = self.headers.get("User-Agent", "-") if self.headers else "-"
        line = f'{self.client_address[0]} - - [{stamp}] "{self.requestline}" {code} {size} "-" "{agent}"'
        print(line, flush=True)

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, file=sys.stderr, flush=True)


def stop(signum: int, frame: object) -> None:
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = os.environ.get("POD_IP") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 80)
    server = ThreadingHTTPServer((host, port), partial(Handler, directory=ROOT))
    server.daemon_threads = True
    print(f"nginx/{VERSION} (kplane) serving {ROOT} on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
