#!/bin/bash
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
# Callers may run it with sh: the shared nginx start-up is in scripts/lib.sh (bash).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../lib.sh"

usage() { echo "usage: $0 start STOREDIR PORT RUNDIR [off|html|json [USERFILE]] | stop RUNDIR" >&2; exit 2; }

status_xml() { # $1 message [$2 status, default FAILURE]
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<NgamsStatus>\n  <Status HostId="nginx-store" Message="%s" State="ONLINE" Status="%s" SubState="IDLE" Version="nginx-store"/>\n</NgamsStatus>\n' "$1" "${2:-FAILURE}"
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
    nginx_prepare "$4" "$port"
    run=$NGINX_RUN; port=$NGINX_PORT
    mkdir -p "$run/static"
    status_xml 'NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File appears not to be available.' > "$run/static/404.xml"
    status_xml 'NGAMS_ER_RETRIEVE_CMD:4018:ERROR: Incorrect parameter: file_id' > "$run/static/400.xml"
    status_xml 'You are not authorized to access the requested resource' > "$run/static/401.xml"
    status_xml 'Successfully handled command STATUS' SUCCESS > "$run/static/status.xml"
    nginx_start warn 256 "worker_processes 2;" "    sendfile on; tcp_nopush on;
    map \$arg_file_id \$ngas_valid_id { default 0; \"~^[A-Za-z0-9_][A-Za-z0-9._+:-]*\$\" 1; }
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        root $store;
        $auth
        error_page 404 /_ngas/404.xml;
        error_page 400 /_ngas/400.xml;
        error_page 401 /_ngas/401.xml;
        location = /STATUS {
            if (\$arg_file_id != \"\") { return 400; }
            default_type text/xml;
            alias $run/static/status.xml;
        }
        location = /RETRIEVE {
            if (\$ngas_valid_id = 0) { return 400; }
            add_header Content-Disposition 'attachment; filename=\"\$arg_file_id\"' always;
            try_files /\$arg_file_id =404;
        }
        location /_ngas/ { internal; auth_basic off; alias $run/static/; default_type text/xml; }
        location /files/ { alias $store/; $autoindex }
        location / { return 404; }
    }"
    echo "PID $(cat "$run/nginx.pid")"
    ;;
stop)
    [ $# -eq 2 ] || usage
    nginx_stop "$2"
    ;;
*) usage ;;
esac
