#!/usr/bin/env bash
# Restore wall time of the demo MOUS (fixture MOUS A) with real modular CASA: the per-step restore program (every
# CASA operation in its own interpreter, as committed before one-process-per-EB) against the current one, same run.
#   bench/restore.sh [ROUNDS] [PARALLEL]     defaults: 3 rounds, --parallel 2
# OLD_REV=<commit> chooses the old program's revision (default: the parent of the commit that introduced restore_eb).
source "$(dirname "$0")/../scripts/lib.sh"
ensure_casa_env >/dev/null
ensure_fixture
OLD_REV="${OLD_REV:-$(cd "$REPO" && git log --format=%H -S'"restore_eb"' --reverse -- casa/casa_steps.py | head -1)^}"
OLD_DIR="$(mktemp -d /tmp/bench-restore-old.XXXXXX)"
trap 'rm -rf "$OLD_DIR"' EXIT
for f in restore_mous.py casa_steps.py calapply.py manifest.py ppr.py; do
  (cd "$REPO" && git show "$OLD_REV:casa/$f") > "$OLD_DIR/$f"
done
say "old program: casa/ at $(cd "$REPO" && git rev-parse --short "$OLD_REV") in $OLD_DIR"
export DROPBOX_FIXTURE_DIR="$FIXTURE_DIR"
exec "$CASA_VENV/bin/python3" "$REPO/bench/restore.py" --old "$OLD_DIR" --rounds "${1:-3}" --parallel "${2:-2}"
