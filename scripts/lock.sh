#!/usr/bin/env bash
# The lock: uv.lock resolves every distribution stedi, its extras and its tools need, for every Python the
# README promises (>= 3.11); requirements/*.txt are exported from it, with hashes, for scripts/setup.sh to
# install with pip alone. Nothing here runs unless asked: the lock changes only on purpose.
#   scripts/lock.sh            after editing pyproject.toml: lock what changed (other pins kept), then export
#   scripts/lock.sh --upgrade  resolve the newest versions pyproject.toml's ranges allow, then export (`make lock`)
#   scripts/lock.sh --check    fail if uv.lock or requirements/ is out of date with pyproject.toml
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-}
if [ -z "$UV" ]; then
  if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; elif command -v uv >/dev/null 2>&1; then UV=uv; else
    echo "lock: needs uv (make setup-dev installs it into .venv)" >&2; exit 1
  fi
fi

# One file per set of extras scripts/setup.sh takes (STEDI_EXTRAS, sorted, joined by '-'; none: base), and
# bootstrap.txt: the pip and setuptools that install the rest (sdists are built with them, not in an
# unpinned build environment).
PROFILES=("bootstrap:@bootstrap" "base:" "report:report" "spark:spark" "report-spark:report,spark" "dev:dev"
          "dev-spark:dev,spark")
# The Glue job's set (the runtime dependencies and the glue extra) goes into the package: `stedi deploy aws`
# builds its zip of wheels from it, wherever stedi is installed.
GLUE="glue:glue"
GLUE_FILE=src/stedi/deploy/glue-requirements.txt

export_to() {  # export_to FILE EXTRAS
  local args=() extra
  if [ "$2" = "@bootstrap" ]; then args=(--only-group bootstrap); else
    args=(--no-default-groups)
    IFS=, read -ra extras <<< "$2"
    for extra in "${extras[@]}"; do args+=(--extra "$extra"); done
  fi
  "$UV" export --quiet --frozen --format requirements-txt --no-emit-project "${args[@]}" --output-file "$1" >/dev/null
}

case "${1:-}" in
  --upgrade) "$UV" lock --upgrade ;;
  --check)
    "$UV" lock --check --quiet || { echo "lock: uv.lock is out of date with pyproject.toml: run make lock" >&2; exit 1; }
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    for profile in "${PROFILES[@]}"; do
      name=${profile%%:*}
      export_to "$tmp/$name.txt" "${profile#*:}"
      if ! diff -q <(grep -v '^#' "$tmp/$name.txt") <(grep -v '^#' "requirements/$name.txt") >/dev/null 2>&1; then
        echo "lock: requirements/$name.txt differs from uv.lock: run scripts/lock.sh" >&2; exit 1
      fi
    done
    export_to "$tmp/glue.txt" "${GLUE#*:}"
    if ! diff -q <(grep -v '^#' "$tmp/glue.txt") <(grep -v '^#' "$GLUE_FILE") >/dev/null 2>&1; then
      echo "lock: $GLUE_FILE differs from uv.lock: run scripts/lock.sh" >&2; exit 1
    fi
    echo "lock: uv.lock and requirements/ agree with pyproject.toml"; exit 0 ;;
  "") "$UV" lock ;;
  *) echo "usage: scripts/lock.sh [--upgrade|--check]" >&2; exit 2 ;;
esac

mkdir -p requirements
for profile in "${PROFILES[@]}"; do
  export_to "requirements/${profile%%:*}.txt" "${profile#*:}"
done
export_to "$GLUE_FILE" "${GLUE#*:}"
echo "lock: uv.lock, requirements/{bootstrap,base,report,spark,report-spark,dev,dev-spark}.txt and $GLUE_FILE written"
