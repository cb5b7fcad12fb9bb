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

# nginx for tests and benches (scripts/services/nginx-*.sh): the start-up and stop they share.
#   nginx_prepare RUNDIR PORT         # checks for nginx; sets NGINX_RUN (absolute, with tmp/) and NGINX_PORT (PORT, or
#                                     # a free loopback port for 0)
#   nginx_start LEVEL CONNECTIONS MAIN HTTP
#                                     # writes NGINX_RUN/nginx.conf — MAIN in the main context, HTTP in `http { }`
#                                     # after the shared logs and temp paths — starts nginx, writes NGINX_RUN/port,
#                                     # waits until it accepts connections (10 s) and prints "PORT <n>"
#   nginx_stop RUNDIR                 # stops the nginx whose PID is in RUNDIR/nginx.pid (a zombie counts as stopped)
nginx_prepare() {
  command -v nginx >/dev/null 2>&1 || { echo "nginx not found: apt-get install --no-install-recommends nginx-light" >&2; exit 3; }
  mkdir -p "$1/tmp"
  NGINX_RUN=$(cd "$1" && pwd)
  NGINX_PORT=$2
  if [ "$NGINX_PORT" = 0 ]; then
    NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fi
}

nginx_start() {
  local run=$NGINX_RUN i=0
  cat > "$run/nginx.conf" <<CONF
$3
pid $run/nginx.pid;
error_log $run/error.log $1;
events { worker_connections $2; }
http {
    access_log $run/access.log;
    client_body_temp_path $run/tmp/body; proxy_temp_path $run/tmp/proxy; fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi; scgi_temp_path $run/tmp/scgi;
    default_type application/octet-stream;
$4
}
CONF
  rm -f "$run/nginx.pid"
  nginx -p "$run" -c "$run/nginx.conf" -e "$run/error.log" </dev/null >"$run/nginx.out" 2>&1
  echo "$NGINX_PORT" > "$run/port"
  while ! python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$NGINX_PORT" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "nginx did not start; see $run/error.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "PORT $NGINX_PORT"
}

nginx_stop() {
  local run=$1 pid i=0
  [ -f "$run/nginx.pid" ] || return 0
  pid=$(cat "$run/nginx.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
    if [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then break; fi
    i=$((i + 1)); sleep 0.05
  done
  rm -f "$run/nginx.pid"
}
