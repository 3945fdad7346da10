"""Stand-in for ansible-test's pip bootstrap script.

ansible-test downloads get-pip.py from a host that the CI machines cannot
reach. This script does the same job from what is at hand: pip from the
standard library's ensurepip, then `pip install` with ansible-test's own
arguments (its pinned pip and options) from the package index.
"""

import ensurepip
import os
import subprocess
import sys

# Options only get-pip.py understands.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    ensurepip.bootstrap(upgrade=True)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    # ansible-test runs pip with a clean environment; keep the system's CA
    # bundle so that a registry behind a local CA still verifies.
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(bundle):
        args = ["--cert", bundle] + args
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
