#!/usr/bin/env bash
# Static checks: python byte-compile, ansible-lint (production profile) and ansible-test sanity.
# ansible-test needs the collection under ansible_collections/hbvip/heartbeat/ and lints what
# `git ls-files` lists there, so it runs on a git copy in a temp dir (tracked + untracked,
# non-ignored files of this checkout), never inside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV_BIN=$REPO/.venv/bin
export PATH="$VENV_BIN:$PATH"

echo "lint: python byte-compile"
python -m compileall -q agent/src lab tests >/dev/null

echo "lint: ansible-lint --profile production"
ansible-lint --profile production --offline -q

# ansible-test downloads a pip bootstrap script from a host these machines cannot reach; it uses a
# cached copy first. This stand-in bootstraps pip with ensurepip, then installs what was asked
# from the ordinary package index.
PIP_CACHE=$HOME/.ansible/test/cache/get_pip_24_2.py
if [ ! -s "$PIP_CACHE" ]; then
  mkdir -p "$(dirname "$PIP_CACHE")"
  cat > "$PIP_CACHE" <<'PY'
"""Stand-in for get-pip.py 24.2 (written by hbvip's scripts/lint.sh)."""
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade", "--disable-pip-version-check", *args])
PY
fi

echo "lint: ansible-test sanity"
work=$(mktemp -d /tmp/hbvip-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/hbvip/heartbeat
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | (cd "$REPO" && xargs -0 cp --parents --no-dereference -t "$dest")
(
  cd "$dest"
  git init -q
  git add -A
  git -c user.name=lint -c user.email=lint@localhost commit -q -m snapshot
  ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --color no ${SANITY_ARGS:-}
)
