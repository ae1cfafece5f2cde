#!/usr/bin/env bash
# Sets up a virtual environment in .venv with stedi and what it needs, on a fresh Debian machine too.
#   scripts/setup.sh                       stedi with the embedded engine and the report (the `report` extra)
#   STEDI_EXTRAS=dev,spark scripts/setup.sh   plus the test tools and Spark (and Java 17, when missing)
#   STEDI_EXTRAS= scripts/setup.sh         stedi alone (no report libraries)
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${STEDI_EXTRAS-report}

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

# What is installed is what was tested: every distribution at the version, and with the hash, that the lock
# pins (requirements/*.txt, exported from uv.lock by scripts/lock.sh). pip installs them without resolving
# anything (--no-deps), and builds stedi and any sdist with the pinned setuptools (--no-build-isolation).
profile=$(tr ',' '\n' <<< "$EXTRAS" | sed '/^$/d' | sort -u | paste -sd- -)
lock="requirements/${profile:-base}.txt"
if [ ! -f "$lock" ]; then
  echo "setup: no lock for STEDI_EXTRAS='$EXTRAS' ($lock); locked sets: $(cd requirements && ls | sed 's/.txt$//' | grep -v bootstrap | paste -sd' ' -)" >&2
  exit 1
fi
stamp="$VENV/.stedi-installed"
stamp_of() { echo "$(cat pyproject.toml requirements/bootstrap.txt "requirements/$1.txt" | sha256sum | cut -c1-16)-$1"; }
want=$(stamp_of "${profile:-base}")
# A venv set up, from the current lock, with more extras than asked for serves as it is (`make demo` after
# `make test` keeps the test tools; the dev extra holds the report one).
have=$(cat "$stamp" 2>/dev/null || true)
have_profile=${have#*-}
if [ -n "$have" ] && [ -f "requirements/$have_profile.txt" ] && [ "$(stamp_of "$have_profile")" = "$have" ] && \
   [ -z "$(comm -23 <(tr ',' '\n' <<< "$EXTRAS" | sed '/^$/d' | sort -u) \
                     <(tr '-' '\n' <<< "$have_profile" | sed 's/^dev$/dev\nreport/' | sort -u))" ]; then
  want=$have
fi
if [ "$have" != "$want" ]; then
  pip_install() { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; }
  pip_install --require-hashes --no-deps -r requirements/bootstrap.txt
  pip_install --require-hashes --no-deps --no-build-isolation -r "$lock"
  # A venv set up from another lock keeps distributions this one no longer has: remove them (before stedi
  # is installed: an older stedi under another distribution name shares its files, the `stedi` script).
  "$VENV/bin/python" - "$lock" <<'PY'
import re, subprocess, sys
from importlib.metadata import distributions
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {norm(line.split("==")[0]) for line in open(sys.argv[1]) if re.match(r"[A-Za-z0-9]", line)}
extra = sorted({norm(d.metadata["Name"]) for d in distributions()} - locked - {"pip", "setuptools", "stedi-lakehouse"})
if extra:
    print("setup: removing what the lock does not pin:", " ".join(extra))
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", *extra], check=True)
PY
  pip_install --no-deps --no-build-isolation -e .
  "$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null || {
    "$VENV/bin/python" -m pip check; echo "setup: $lock does not hold what pyproject.toml asks: scripts/lock.sh" >&2; exit 1; }
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
