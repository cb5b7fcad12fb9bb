#!/usr/bin/env python3
"""An NGAS-shaped archive store with scripted faults, for tests (stdlib only).

    python3 fault_store.py --store DIR [--port 0] [--run-dir DIR]

Serves GET/HEAD /RETRIEVE?file_id=ID from DIR (flat files) like NGAS: Content-Disposition, Content-Length,
Range (bytes=N-) with 206, NgamsStatus FAILURE XML bodies for errors. A fault is selected by a path prefix:
/<fault>/RETRIEVE?file_id=ID. A fault named "<name>-then-ok" applies to the first request for that file id
(per fault) only; "<name>" applies to every request. Faults:

  503          503 + Retry-After: 1 (NGAS-style XML body)      429   429 + Retry-After as an HTTP date (+1 s)
  500          500 with an XML body
  truncate     full Content-Length, half the body, then close   reset  half the body, then TCP RST
  short-length Content-Length and body 10 bytes short           long-length Content-Length 10 bytes too long
  stall        half the body, then sleep 600 s                  slow  body in 4 KiB chunks every 20 ms
  corrupt-byte one byte in the middle flipped                   ignore-range  truncate on the first request,
                                                                      later requests ignore Range (200)
  redirect-303 303 to the fault-free URL                        ngas-failure  400 NgamsStatus FAILURE
  ngas-failure-200  200, text/xml NgamsStatus FAILURE body      416   416 for any Range request
  empty        close without any response
  A-B-then-ok  a sequence of the simple faults above (503, 429, 500, truncate, reset, empty), one per attempt for
               that file id, then the whole file: e.g. 503-truncate-then-ok

GET /STATUS?file_id=ID -> NGAS FileStatus XML (FileSize, Checksum as signed crc32, ChecksumPlugIn ngamsGenCrc32)
GET /_counters -> JSON {"files": {id: {"requests": n, "bytes": n}}, "faults": {"fault|id": n}}
GET /_reset    -> clears the counters.
Writes RUN_DIR/port and RUN_DIR/pid when --run-dir is given, and prints "PORT <n>" on stdout.
"""
import argparse, email.utils, json, os, re, socket, struct, sys, threading, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs, quote

VALID_ID = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9._+:-]*$')
LOCK = threading.Lock()
COUNTERS = {"files": {}, "faults": {}}


def ngas_xml(status, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE NgamsStatus SYSTEM "http://localhost/RETRIEVE?internal=ngamsStatus.dtd">\n'
            '<NgamsStatus>\n  <Status CompletionTime="2024-01-01T00:00:00.000" Date="2024-01-01T00:00:00.000" '
            'HostId="faultstore" LastRequestStatUpdate="2024-01-01T00:00:00.000" Message="%s" '
            'RequestId="1" RequestTime="2024-01-01T00:00:00.000" State="ONLINE" Status="%s" '
            'SubState="IDLE" Version="v11.0.0/2024-01-01T00:00:00"/>\n</NgamsStatus>\n' % (message, status)).encode()


# Faults that can be chained into a sequence ("503-truncate-then-ok").
FAULT_NAMES = {"503", "429", "500", "truncate", "reset", "empty"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NGAMS/v11.0-faultstore"

    def log_message(self, fmt, *args):
        pass

    def count(self, file_id, nbytes=0, request=False):
        with LOCK:
            entry = COUNTERS["files"].setdefault(file_id, {"requests": 0, "bytes": 0})
            entry["bytes"] += nbytes
            if request:
                entry["requests"] += 1

    def send_body(self, status, body, ctype="text/xml", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def write_counted(self, file_id, data):
        self.wfile.write(data)
        self.wfile.flush()
        self.count(file_id, len(data))

    def status(self, ids):
        if len(ids) != 1 or not VALID_ID.match(ids[0]):
            return self.send_body(400, ngas_xml("FAILURE", "NGAMS_ER_CMD_SYNTAX:4015:ERROR: file_id missing"))
        path = os.path.join(self.server.store, ids[0])
        if not os.path.isfile(path):
            return self.send_body(400, ngas_xml("FAILURE", "NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File with ID: %s appears not to be available." % ids[0]))
        crc = 0
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                crc = zlib.crc32(block, crc)
        signed = crc - (1 << 32) if crc >= (1 << 31) else crc
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<NgamsStatus>\n  <Status HostId="faultstore" Message="Successfully handled command STATUS" State="ONLINE" Status="SUCCESS" SubState="IDLE" Version="v11"/>\n'
                '  <DiskStatus DiskId="disk1" Mounted="1">\n    <FileStatus Checksum="%d" ChecksumPlugIn="ngamsGenCrc32" Compression="" FileId="%s" '
                'FileSize="%d" FileVersion="1" Format="application/octet-stream" UncompressedFileSize="%d"/>\n  </DiskStatus>\n</NgamsStatus>\n'
                % (signed, ids[0], os.path.getsize(path), os.path.getsize(path))).encode()
        return self.send_body(200, body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_counters":
            with LOCK:
                body = json.dumps(COUNTERS).encode()
            return self.send_body(200, body, "application/json")
        if url.path == "/_reset":
            with LOCK:
                COUNTERS["files"].clear()
                COUNTERS["faults"].clear()
            return self.send_body(200, b"{}", "application/json")
        parts = [p for p in url.path.split("/") if p]
        if parts and parts[-1] == "STATUS" and len(parts) <= 2:  # a fault prefix does not affect STATUS
            return self.status(parse_qs(url.query).get("file_id", []))
        if not parts or parts[-1] != "RETRIEVE" or len(parts) > 2:
            return self.send_body(404, ngas_xml("FAILURE", "NGAMS_ER_ILL_CMD:4017:ERROR: Unknown command"))
        fault = parts[0] if len(parts) == 2 else ""
        ids = parse_qs(url.query).get("file_id", [])
        if len(ids) != 1 or not VALID_ID.match(ids[0]):
            return self.send_body(400, ngas_xml("FAILURE", "NGAMS_ER_RETRIEVE_CMD:4018:ERROR: Incorrect parameter: file_id"))
        file_id = ids[0]
        self.count(file_id, request=True)
        once = fault.endswith("-then-ok")
        name = fault[:-len("-then-ok")] if once else fault
        with LOCK:
            key = "%s|%s" % (fault, file_id)
            attempt = COUNTERS["faults"].get(key, 0) + 1
            COUNTERS["faults"][key] = attempt
        active = name if (not once or attempt == 1) else ""
        if "-" in name and once and all(part in FAULT_NAMES for part in name.split("-")):
            # A sequence such as "503-truncate-then-ok": one fault per attempt, in order, then the whole file.
            parts = name.split("-")
            active = parts[attempt - 1] if attempt <= len(parts) else ""
        if name == "ignore-range":
            active = "truncate" if attempt == 1 else "ignore-range"
        path = os.path.join(self.server.store, file_id)
        if not os.path.isfile(path):
            return self.send_body(404, ngas_xml("FAILURE", "NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File with ID: %s appears not to be available." % file_id))
        if active == "redirect-303":
            # Like NGAS: 303 to the node holding the file, with a small body that must not end up in the file.
            body = b"<html><body>See other node</body></html>\n"
            self.send_response(303)
            self.send_header("Location", "/RETRIEVE?file_id=%s" % quote(file_id))
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if active in ("503", "500"):
            return self.send_body(int(active), ngas_xml("FAILURE", "NGAMS_ER_MAINT:9999:ERROR: temporarily unavailable"), extra=[("Retry-After", "1")] if active == "503" else [])
        if active == "429":
            when = email.utils.formatdate(time.time() + 1, usegmt=True)
            return self.send_body(429, b"slow down", "text/plain", extra=[("Retry-After", when)])
        if active == "ngas-failure":
            return self.send_body(400, ngas_xml("FAILURE", "NGAMS_ER_UNAVAIL_FILE:4019:ERROR: File with ID: %s appears not to be available." % file_id))
        if active == "ngas-failure-200":
            return self.send_body(200, ngas_xml("FAILURE", "NGAMS_ER_DAPI_BAD_FILE:4021:ERROR: DPPI failed for %s" % file_id))
        if active == "empty":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        with open(path, "rb") as f:
            data = f.read()
        size = len(data)
        start = 0
        rng = self.headers.get("Range")
        if rng and active == "416":
            return self.send_body(416, b"", "text/plain", extra=[("Content-Range", "bytes */%d" % size)])
        if rng and active != "ignore-range":
            m = re.match(r"^bytes=(\d+)-$", rng.strip())
            if not m:
                return self.send_body(400, ngas_xml("FAILURE", "NGAMS_ER_RETRIEVE_CMD:4018:ERROR: Invalid Range header"))
            start = int(m.group(1))
            if start >= size:
                return self.send_body(416, b"", "text/plain", extra=[("Content-Range", "bytes */%d" % size)])
        body = data[start:]
        if active == "corrupt-byte":
            mid = size // 2 - start
            if 0 <= mid < len(body):
                body = body[:mid] + bytes([body[mid] ^ 0x5A]) + body[mid + 1:]
        length = len(body)
        if active == "short-length":
            body = body[:-10]
            length = len(body)
        if active == "long-length":
            length += 10
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", 'attachment; filename="%s"' % file_id)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if active in ("truncate", "reset", "stall"):
                self.write_counted(file_id, body[: len(body) // 2])
                if active == "stall":
                    time.sleep(600)
                elif active == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if active == "slow":
                for i in range(0, len(body), 4096):
                    self.write_counted(file_id, body[i:i + 4096])
                    time.sleep(0.02)
            else:
                for i in range(0, len(body), 1 << 20):
                    self.write_counted(file_id, body[i:i + (1 << 20)])
            if active == "long-length":
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--run-dir")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.store = os.path.abspath(args.store)
    port = server.server_address[1]
    if args.run_dir:
        os.makedirs(args.run_dir, exist_ok=True)
        for name, value in (("port", port), ("pid", os.getpid())):
            tmp = os.path.join(args.run_dir, name + ".tmp")
            with open(tmp, "w") as f:
                f.write("%d\n" % value)
            os.rename(tmp, os.path.join(args.run_dir, name))
    print("PORT %d" % port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
