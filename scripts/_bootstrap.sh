# Sourced by scripts/serve and scripts/test: create .venv if missing and install the
# project with the exact versions of constraints.txt (again only when pyproject.toml or
# constraints.txt changed since the last install; scripts/lock refreshes constraints.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
extras=${BOOTSTRAP_EXTRAS:-}  # not "$1": a sourced file sees the caller's arguments
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "Python 3.11 or newer is required (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "installing the project${extras:+ with [$extras]} into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
