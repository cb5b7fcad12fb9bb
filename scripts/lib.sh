# Shared by scripts/demo.sh, scripts/test.sh and the benches. Source it; it sets paths and helpers.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DROPBOX_CACHE:-$REPO/.cache}"
CASA_VENV="${DROPBOX_CASA_VENV:-$CACHE/casa-venv}"
FIXTURE_DIR="${DROPBOX_FIXTURE_DIR:-$CACHE/fixture}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The system packages the agent builds and tests with (Debian names).
APT_PACKAGES=(libcurl4-openssl-dev libarchive-dev libsqlite3-dev libxml2-dev libdeflate-dev libssl-dev zlib1g-dev pkg-config nginx-light inotify-tools
  python3-aiosmtpd openssl rsync xvfb xauth procps python3-venv systemd dash dpkg-dev binutils prometheus chromium
  util-linux iproute2 sshfs openssh-server openssh-client socat slurmctld slurmd slurm-client munge slurmdbd mariadb-server
  mariadb-client)
# (util-linux's unshare and iproute2 make the namespace "hosts" of tests/test_multihost.py; sshfs, openssh-server
# and socat share their spool over a real network filesystem; slurmctld, slurmd, slurm-client and munge make the
# single-node Slurm of tests/test_slurm.py, started by scripts/services/slurm.sh; slurmdbd, mariadb-server and
# mariadb-client its accounting, SLURM_ACCOUNTING=1, for sacct.)

missing_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

require_apt_packages() {
  local missing
  missing="$(missing_apt_packages)"
  [ -z "$missing" ] || die "missing system packages: $missing
  install them with:  sudo apt-get install --no-install-recommends $missing   (or run: make deps)"
}

# Creates (or reuses) the modular CASA environment; fast when already complete.
ensure_casa_env() {
  say "modular CASA environment: $CASA_VENV"
  "$PYTHON" "$REPO/casa/casaenv.py" install --venv "$CASA_VENV" "$@" >&2
}

# Generates the synthetic MOUS once; regenerated when the generator changes.
ensure_fixture() {
  local stamp digest
  digest="$(cat "$REPO"/casa/*.py "$REPO/casa/requirements.txt" | sha256sum | cut -c1-16)"
  stamp="$FIXTURE_DIR/.generated-$digest"
  if [ -f "$stamp" ]; then
    say "synthetic MOUS fixture (cached): $FIXTURE_DIR"
    return
  fi
  say "generating the synthetic MOUS fixture with real CASA (first run only, about a minute): $FIXTURE_DIR"
  rm -rf "$FIXTURE_DIR"
  mkdir -p "$(dirname "$FIXTURE_DIR")"
  "$CASA_VENV/bin/python3" "$REPO/casa/make_fixture.py" "$FIXTURE_DIR" >&2
  touch "$stamp"
}

# Runs the CASA venv's python with the offline configuration (casa/casaenv.py sets the same for the agent).
casa_python() {
  local home="${CASA_HOME_DIR:-$CACHE/casa-home}"
  mkdir -p "$home"
  env -u DISPLAY HOME="$home" CASASITECONFIG="$CASA_VENV/casasiteconfig.py" MPLBACKEND=Agg LANG=C.UTF-8 \
    "$CASA_VENV/bin/python3" "$@"
}

build_agent() {
  say "building the agent"
  (cd "$REPO" && swift build "$@" >&2)
  AGENT="$REPO/.build/debug/dropbox-agent"
}
