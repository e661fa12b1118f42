#!/usr/bin/env bash
# Static checks; each tool is added here as the code it checks lands.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: python byte-compile"
.venv/bin/python -m compileall -q agent/src lab tests >/dev/null
