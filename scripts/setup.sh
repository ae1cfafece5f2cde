#!/usr/bin/env bash
# Sets up a virtual environment in .venv with stedi and what it needs, on a fresh Debian machine too.
#   scripts/setup.sh                       stedi with the embedded engine
#   STEDI_EXTRAS=dev,spark scripts/setup.sh   plus the test tools and Spark (and Java 17, when missing)
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${STEDI_EXTRAS-}

need_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: stedi needs Python >= 3.11 as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian splits venv out of the interpreter package.
    if need_apt; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "setup: '$PYTHON -m venv' failed; install your distribution's python3-venv package" >&2
      exit 1
    fi
  fi
fi

stamp="$VENV/.stedi-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi

# Spark runs on Java 17 (the JRE is enough).
if [[ ",$EXTRAS," == *",spark,"* ]] && ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  if need_apt; then
    echo "setup: installing Java 17 for Spark (openjdk-17-jre-headless)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "setup: Spark needs Java 17: install openjdk-17-jre-headless (or set JAVA_HOME)" >&2
  fi
fi
# `stedi report` draws its lineage graph with Graphviz's dot.
if ! command -v dot >/dev/null 2>&1; then
  if need_apt; then
    echo "setup: installing Graphviz for stedi report (graphviz)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
  else
    echo "setup: stedi report needs Graphviz: install your distribution's graphviz package" >&2
  fi
fi
# The browser tests drive headless Chromium (Debian's; Playwright's own browser builds cannot be fetched).
if [[ ",$EXTRAS," == *",dev,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if need_apt; then
    echo "setup: installing Chromium for the browser tests (chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: the browser tests need Chromium: install your distribution's chromium package" >&2
  fi
fi
echo "setup: ready ($("$VENV/bin/stedi" --version))"
