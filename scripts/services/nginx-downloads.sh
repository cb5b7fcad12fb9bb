#!/bin/sh
# The download area served by nginx as a site would serve it, for tests.
#
#   nginx-downloads.sh start AREA PREFIX RUNDIR [USER]   # prints "PORT <n>"; workers run as USER (default www-data
#                                                        # when started as root)
#   nginx-downloads.sh stop RUNDIR
#
# GET /PREFIX/<path> serves AREA/<path>. The directory index is ON on purpose: whether a directory can be listed
# is then decided by its permissions alone (nginx answers 403 for a directory its worker user cannot read).
# Writes RUNDIR/port and RUNDIR/nginx.pid.
set -eu

usage() { echo "usage: $0 start AREA PREFIX RUNDIR [USER] | stop RUNDIR" >&2; exit 2; }

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -eq 4 ] || [ $# -eq 5 ] || usage
    area=$2; prefix=$3; run=$4; user=${5:-www-data}
    command -v nginx >/dev/null 2>&1 || { echo "nginx not found: apt-get install --no-install-recommends nginx-light" >&2; exit 3; }
    mkdir -p "$run/tmp"; run=$(cd "$run" && pwd)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    userline=""
    if [ "$(id -u)" = 0 ]; then userline="user $user;"; fi
    cat > "$run/nginx.conf" <<CONF
$userline
worker_processes 1;
pid $run/nginx.pid;
error_log $run/error.log info;
events { worker_connections 64; }
http {
    access_log $run/access.log;
    client_body_temp_path $run/tmp/body; proxy_temp_path $run/tmp/proxy; fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi; scgi_temp_path $run/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        location /$prefix/ { alias $area/; autoindex on; }
        location / { return 404; }
    }
}
CONF
    rm -f "$run/nginx.pid"
    nginx -p "$run" -c "$run/nginx.conf" -e "$run/error.log" </dev/null >"$run/nginx.out" 2>&1
    echo "$port" > "$run/port"
    i=0
    while ! python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$port" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "nginx did not start; see $run/error.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "PORT $port"
    ;;
stop)
    [ $# -eq 2 ] || usage
    run=$2
    [ -f "$run/nginx.pid" ] || exit 0
    pid=$(cat "$run/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || exit 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
        if [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then break; fi
        i=$((i + 1)); sleep 0.05
    done
    rm -f "$run/nginx.pid"
    ;;
*) usage ;;
esac
