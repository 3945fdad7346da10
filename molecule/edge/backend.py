"""A test backend of the edge scenario: serves the files of its directory, as
`python3 -m http.server` does, and writes one JSON line per request it
receives (path and every header as it arrived) to <port>.requests.jsonl
beside that directory, so that tests can tell what reached an upstream and
with which headers. GET /echo answers that same JSON.

    backend.py PORT DIRECTORY
"""

import functools
import http.server
import json
import sys
import threading

LOCK = threading.Lock()


class Handler(http.server.SimpleHTTPRequestHandler):
    log_path = None

    def _record(self):
        entry = {"path": self.path, "client": self.client_address[0],
                 "headers": [[key, value] for key, value in self.headers.items()]}
        line = json.dumps(entry, sort_keys=True)
        with LOCK, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        return line

    def do_GET(self):
        line = self._record()
        if self.path.split("?", 1)[0] == "/echo":
            body = (line + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def do_HEAD(self):
        self._record()
        super().do_HEAD()


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    Handler.log_path = "%s.requests.jsonl" % directory.rstrip("/")
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
