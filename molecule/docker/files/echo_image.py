"""Build a tiny image with no registry: the host's own python3, only the
files it maps and the modules the echo server imports, and the server.

Run on the Debian 13 instance: python3 echo_image.py IMAGE. Prints the
image size in bytes.
"""

import glob
import io
import json
import os
import subprocess
import sys
import tarfile

SERVER = r'''
import socket, sys
if len(sys.argv) > 2:
    # Client: GET / from host argv[1], port argv[2], print the answer.
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    sys.stdout.write(data.decode())
    sys.exit(0)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8080))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    conn.recv(4096)
    body = "hello from %s\n" % socket.gethostname()
    conn.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body)).encode())
    conn.close()
'''

PROBE = (
    "import socket, sys, json, encodings.idna\n"
    "files = {m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)}\n"
    "maps = {l.split()[-1] for l in open('/proc/self/maps') if len(l.split()) >= 6 and l.split()[-1].startswith('/')}\n"
    "print(json.dumps(sorted(files | maps)))\n"
)


def main(image):
    exe = os.path.realpath("/usr/bin/python3")
    files = set(json.loads(subprocess.check_output([exe, "-I", "-S", "-c", PROBE])))
    # The ELF interpreter is reached by its /lib64 (or /lib) path.
    files |= set(glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*"))
    files.add(exe)
    # The maps name the libraries' real files; the loader looks them up by
    # their SONAME links (libz.so.1 -> libz.so.1.3.1): add the links too.
    links = set()
    for path in files:
        if ".so" in os.path.basename(path):
            for cand in glob.glob(os.path.join(os.path.dirname(path), "*.so*")):
                if os.path.islink(cand) and os.path.realpath(cand) == os.path.realpath(path):
                    links.add(cand)
    pyver = "python%d.%d" % sys.version_info[:2]
    dirs = {"srv", "tmp", "usr/lib/%s/lib-dynload" % pyver}
    for path in files:
        parent = os.path.dirname(path.lstrip("/"))
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for path in sorted(files):
            if os.path.isfile(path):
                tar.add(os.path.realpath(path), arcname=path.lstrip("/"), recursive=False)
        for path in sorted(links - files):
            tar.add(path, arcname=path.lstrip("/"), recursive=False)
        if exe != "/usr/bin/python3":
            link = tarfile.TarInfo("usr/bin/python3")
            link.type = tarfile.SYMTYPE
            link.linkname = os.path.basename(exe)
            tar.addfile(link)
        data = SERVER.encode()
        info = tarfile.TarInfo("srv/echo.py")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "import", "-c", 'CMD ["/usr/bin/python3", "-I", "-S", "/srv/echo.py"]', "-", image],
                   input=buf.getvalue(), check=True, stdout=subprocess.DEVNULL)
    print(len(buf.getvalue()))


if __name__ == "__main__":
    main(sys.argv[1])
