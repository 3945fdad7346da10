"""Secrets never land in the repository in clear."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line and not line.startswith("collections/")]


def test_every_vault_file_is_encrypted():
    vaults = [p for p in tracked_files() if p.name.startswith("vault") and p.suffix in (".yml", ".yaml")]
    clear = [str(p.relative_to(ROOT)) for p in vaults if not p.read_text(errors="replace").startswith("$ANSIBLE_VAULT;")]
    assert not clear, "vault files in clear (encrypt them with ansible-vault): %s" % ", ".join(clear)


def test_no_private_key_is_committed():
    keys = []
    for path in tracked_files():
        if path.is_file() and path.stat().st_size < 1_000_000:
            if "PRIVATE KEY-----" in path.read_text(errors="replace") and path.suffix != ".py":
                keys.append(str(path.relative_to(ROOT)))
    assert not keys, "private keys in the repository: %s" % ", ".join(keys)
