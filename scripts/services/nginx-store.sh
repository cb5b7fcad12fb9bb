#!/bin/sh
# An NGAS-shaped archive store served by nginx, for tests and benchmarks.
#
#   nginx-store.sh start STOREDIR PORT RUNDIR [AUTOINDEX [USERFILE]]
#                                               # PORT 0 = pick a free loopback port; prints "PORT <n>" and "PID <n>"
#   nginx-store.sh stop RUNDIR                  # stops the nginx whose PID is in RUNDIR/nginx.pid
#
# GET /RETRIEVE?file_id=<id> returns STOREDIR/<id> with Content-Disposition, Content-Length and Range support.
# Ids must match [A-Za-z0-9_][A-Za-z0-9._+:-]* (else 400); unknown ids get 404. Both errors carry an NGAS
# NgamsStatus FAILURE XML body.
# GET /files/<name> serves STOREDIR/<name> as a plain file server (Range support); AUTOINDEX `html` or `json`
# turns nginx's directory index on for /files/ in that format (default `off`). Writes RUNDIR/port and RUNDIR/nginx.pid. Workers run as nobody: the store
# must be world-readable.
# GET /STATUS (the NGAS STATUS command without parameters) answers an NgamsStatus SUCCESS document about the
# server, as NGAS does; with file_id it is refused (400: this stand-in keeps no file status).
# USERFILE (an nginx auth_basic_user_file, e.g. "user:{SSHA}..."; world-readable) makes every request need HTTP
# Basic authentication, as an NGAS server with authorisation enabled does: without or with a wrong login 401,
# WWW-Authenticate: Basic, and an NgamsStatus FAILURE body.
set -eu

usage() { echo "usage: $0 start STOREDIR PORT RUNDIR [off|html|json [USERFILE]] | stop RUNDIR" >&2; exit 2; }

status_xml() { # $1 message [$2 status, default FAILURE]
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<NgamsStatus>\n  <Status HostId="nginx-store" Message="%s" State="ONLINE" Status="%s" SubState="IDLE" Version="nginx-store"/>\n</NgamsStatus>\n' "$1" "${2:-FAILURE}"
}

wait_port() { # $1 port: probe until something accepts connections (5 s)
    i=0
    while [ $i -lt 100 ]; do
        if python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null; then
            return 0
        fi
        i=$((i + 1)); sleep 0.05
    done
    return 1
}

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -ge 4 ] && [ $# -le 6 ] || usage
    store=$(cd "$2" && pwd); port=$3; run=$4
    auth=""
    if [ $# -eq 6 ]; then
        [ -r "$6" ] || { echo "user file $6 is not readable" >&2; exit 2; }
        auth="auth_basic \"NGAS\"; auth_basic_user_file $(cd "$(dirname "$6")" && pwd)/$(basename "$6");"
    fi
    case "${5:-off}" in
    off) autoindex="autoindex off;" ;;
    html|json) autoindex="autoindex on; autoindex_format $5;" ;;
    *) usage ;;
    esac
    command -v nginx >/dev/null 2>&1 || { echo "nginx not found: apt-get install --no-install-recommends nginx-light" >&2; exit 3; }
    mkdir -p "$run/static" "$run/tmp"; run=$(cd "$run" && pwd)
    if [ "$port" = 0 ]; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    fi
    status_xml 'NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File appears not to be available.' > "$run/static/404.xml"
    status_xml 'NGAMS_ER_RETRIEVE_CMD:4018:ERROR: Incorrect parameter: file_id' > "$run/static/400.xml"
    status_xml 'You are not authorized to access the requested resource' > "$run/static/401.xml"
    status_xml 'Successfully handled command STATUS' SUCCESS > "$run/static/status.xml"
    cat > "$run/nginx.conf" <<CONF
worker_processes 2;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 256; }
http {
    access_log $run/access.log;
    client_body_temp_path $run/tmp/body; proxy_temp_path $run/tmp/proxy; fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi; scgi_temp_path $run/tmp/scgi;
    sendfile on; tcp_nopush on;
    default_type application/octet-stream;
    map \$arg_file_id \$ngas_valid_id { default 0; "~^[A-Za-z0-9_][A-Za-z0-9._+:-]*\$" 1; }
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        root $store;
        $auth
        error_page 404 /_ngas/404.xml;
        error_page 400 /_ngas/400.xml;
        error_page 401 /_ngas/401.xml;
        location = /STATUS {
            if (\$arg_file_id != "") { return 400; }
            default_type text/xml;
            alias $run/static/status.xml;
        }
        location = /RETRIEVE {
            if (\$ngas_valid_id = 0) { return 400; }
            add_header Content-Disposition 'attachment; filename="\$arg_file_id"' always;
            try_files /\$arg_file_id =404;
        }
        location /_ngas/ { internal; auth_basic off; alias $run/static/; default_type text/xml; }
        location /files/ { alias $store/; $autoindex }
        location / { return 404; }
    }
}
CONF
    rm -f "$run/nginx.pid"
    nginx -p "$run" -c "$run/nginx.conf" -e "$run/error.log" </dev/null >"$run/nginx.out" 2>&1
    echo "$port" > "$run/port"
    if ! wait_port "$port"; then echo "nginx did not start; see $run/error.log" >&2; exit 1; fi
    echo "PORT $port"
    echo "PID $(cat "$run/nginx.pid")"
    ;;
stop)
    [ $# -eq 2 ] || usage
    run=$2
    [ -f "$run/nginx.pid" ] || exit 0
    pid=$(cat "$run/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || exit 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        # a zombie counts as stopped
        if [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ]; then break; fi
        i=$((i + 1)); sleep 0.05
    done
    rm -f "$run/nginx.pid"
    ;;
*) usage ;;
esac
