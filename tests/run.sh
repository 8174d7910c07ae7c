#!/usr/bin/env bash
# The README's test command (CI runs exactly this, through .ci/run): on a fresh machine it sets
# up everything the tests need, then lints, type-checks and runs the tests.
#   - system tools the tests drive: Chromium (the dashboard in a real headless browser) and
#     promtool (Prometheus' metrics linter), and Python's venv (Debian's python3-venv);
#     installed with apt-get when missing and allowed
#     (root on Debian, as CI runs), else the script says what to install and stops;
#   - a virtualenv with the project and its test extras;
#   - ruff, ruff format --check, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)  # Debian splits it off
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "the tests need: ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest --durations=25 "$@"
