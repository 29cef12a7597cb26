#!/usr/bin/env bash
# Creates the virtualenv of the Python participant at .local/py-participant-venv (repo-relative)
# and installs requirements.txt into it. Does nothing when that is already done.
# Env: PYTHON (default: python3.11, else python3), PY_PARTICIPANT_VENV (override the path).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PY_PARTICIPANT_VENV:-$root/.local/py-participant-venv}"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
  && "$venv/bin/python" -c 'import kafka' >/dev/null 2>&1; then
  echo "python participant: $venv is up to date"
  exit 0
fi

pip_args=(install --quiet --disable-pip-version-check --no-input -r "$requirements")
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
installed=0
if [[ ! -x "$venv/bin/python" ]]; then
  # Fast path: a venv without its own pip, filled by the base interpreter's pip (22.3+ has
  # --python). Takes about a second instead of three; falls back to the stock way.
  if "$python" -m venv --without-pip "$venv" \
    && "$python" -m pip --python "$venv/bin/python" "${pip_args[@]}" 2>/dev/null; then
    installed=1
  else
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
fi
if [[ "$installed" == 0 ]]; then
  if [[ -x "$venv/bin/pip" ]]; then
    "$venv/bin/python" -m pip "${pip_args[@]}"
  else
    "$python" -m pip --python "$venv/bin/python" "${pip_args[@]}"
  fi
fi
echo "$want" > "$stamp"
echo "python participant: installed $(tr '\n' ' ' < "$requirements")into $venv"
