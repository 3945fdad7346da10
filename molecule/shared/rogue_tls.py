"""A server that presents a certificate from ANOTHER CA, for the right name:
what a client meets when someone on the path (a spoofed DNS answer, an ARP
or a routing trick) answers in place of the real service. A client that
checks certificates the way we ship it must refuse it.

Two halves in one file:
- on the host (`python3 rogue_tls.py PORT CERT KEY [postgres]`): accepts TLS
  connections for two minutes, presenting CERT; with `postgres`, it first
  answers PostgreSQL's SSLRequest as a server that speaks TLS would.
- on the controller (imported by Testinfra tests): start(host, port, sans)
  makes the other CA and a leaf for sans on the host with openssl, starts
  the server in the background and returns the path of the other CA.
"""

import pathlib
import socket
import ssl
import sys
import time

HOST_DIR = "/root/rogue-tls"


def _serve(port, cert, key, mode=""):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.create_server(("0.0.0.0", int(port)), reuse_port=True) as srv:
        srv.settimeout(0.5)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn, _peer = srv.accept()
            except socket.timeout:
                continue
            try:
                conn.settimeout(5)
                if mode == "postgres":
                    conn.recv(8)  # SSLRequest
                    conn.sendall(b"S")
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()


def start(host, port, sans, mode=""):
    """Start the rogue server on host:port with a leaf for sans (["DNS:x", "IP:y"]); the other CA's path."""
    host.check_output("mkdir -p -m 0700 %s", HOST_DIR)
    host.ansible("copy", "src=%s dest=%s/rogue_tls.py mode=0700" % (pathlib.Path(__file__).resolve(), HOST_DIR),
                 check=False)
    script = (
        "set -e; cd {d}; "
        "[ -f other-ca.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-subj '/CN=Another CA' -keyout other-ca.key -out other-ca.pem 2>/dev/null; "
        "printf 'subjectAltName=%s\\n' {sans} > leaf-{port}.ext; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=rogue' "
        "-keyout leaf-{port}.key -out leaf-{port}.csr 2>/dev/null; "
        "openssl x509 -req -in leaf-{port}.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -days 2 "
        "-extfile leaf-{port}.ext -out leaf-{port}.pem 2>/dev/null; "
        "nohup python3 rogue_tls.py {port} leaf-{port}.pem leaf-{port}.key {mode} >/dev/null 2>&1 &"
    ).format(d=HOST_DIR, sans="'%s'" % ",".join(sans), port=int(port), mode=mode)
    host.check_output(script)
    for _attempt in range(50):
        if host.run("python3 -c 'import socket,sys; socket.create_connection((\"127.0.0.1\", %d), 1)'" % port).rc == 0:
            break
        time.sleep(0.1)
    return HOST_DIR + "/other-ca.pem"


if __name__ == "__main__":
    _serve(*sys.argv[1:5])
