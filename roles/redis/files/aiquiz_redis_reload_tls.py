"""Usage: python3 reload_tls.py CERT KEY CA (the ExecReload of redis-server)

Makes a running Redis read its TLS certificate, key and CA files again
without a restart: `CONFIG SET` of the same paths builds a new TLS context
for new connections; connections in progress keep theirs. The ExecReload of
redis-server.service (installed by aiquiz.ops.redis), so that
`systemctl reload redis-server` (the tls role's consumer `redis`) rotates a
certificate without dropping a client.

It talks to Redis over its local socket as root and reads the password
from /etc/redis/redis-auth.conf: the password never reaches a command line
or an environment.
"""

import re
import socket
import sys

AUTH_FILE = "/etc/redis/redis-auth.conf"
SOCKET = "/run/redis/redis-server.sock"


def password(path=AUTH_FILE):
    """The requirepass value of the role's auth file (quoted, \\ and " escaped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            match = re.match(r'^requirepass "((?:[^"\\]|\\.)*)"\s*$', line)
            if match:
                return re.sub(r"\\(.)", r"\1", match.group(1))
    raise SystemExit("redis reload_tls: no requirepass in %s" % path)


def command(conn, reader, *words):
    """Send one command (RESP array of bulk strings); its one-line reply."""
    out = b"*%d\r\n" % len(words)
    for word in words:
        data = word.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    conn.sendall(out)
    return reader.readline().decode(errors="replace").rstrip("\r\n")


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__.split("\n\n", 1)[0])
    cert, key, ca = argv[1:4]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(SOCKET)
        reader = conn.makefile("rb")
        reply = command(conn, reader, "AUTH", password())
        if reply != "+OK":
            raise SystemExit("redis reload_tls: AUTH refused: %s" % reply)
        reply = command(conn, reader, "CONFIG", "SET", "tls-cert-file", cert, "tls-key-file", key,
                        "tls-ca-cert-file", ca)
        if reply != "+OK":
            raise SystemExit("redis reload_tls: Redis kept its TLS files: %s" % reply)
    print("Redis reloaded its TLS files (%s)" % cert)


if __name__ == "__main__":
    main(sys.argv)
