"""Receives Alertmanager webhook notifications and appends each as one JSON line.

The lab's alert receiver, readable by tests; in production it is a local
record of every notification next to the mail or chat receivers.
Standard library only.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def make_handler(out_path):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self.send_error(400, "not JSON")
                return
            record = {"received": time.time(), "notification": payload}
            with LOCK, open(out_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record, sort_keys=True) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, fmt, *args):  # quiet: the file is the record
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:9095")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), make_handler(args.out)).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
