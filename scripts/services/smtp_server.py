#!/usr/bin/python3
"""A scripted SMTP server for tests, on Debian's aiosmtpd (run with /usr/bin/python3).

    /usr/bin/python3 smtp_server.py --run-dir DIR [--port 0] [--user U --password P] [--implicit-tls] [--plain]

Default: STARTTLS required, AUTH PLAIN/LOGIN required (when --user is given), self-signed certificate for
127.0.0.1/localhost generated with openssl into RUN_DIR (cert.pem is the CA file for clients).
--implicit-tls: TLS from the first byte (smtps). --plain: no TLS at all (AUTH then allowed in clear).
Scripted rejections by recipient local part:
  reject550@…  550 at RCPT          reject451@…  451 at RCPT the first time for that address, then accepted
  reject554@…  554 after DATA (for the whole message)
Each accepted message is saved as RUN_DIR/mail/<n>.eml plus <n>.json {"mail_from", "rcpt_tos", "auth_user",
"tls"}. Writes RUN_DIR/port and RUN_DIR/pid; prints "PORT <n>". Stops on SIGTERM.
"""
import argparse, json, os, signal, socket, ssl, subprocess, sys, threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    sys.exit("aiosmtpd missing: apt-get install --no-install-recommends python3-aiosmtpd (use /usr/bin/python3)")


def make_cert(run_dir):
    cert, key = os.path.join(run_dir, "cert.pem"), os.path.join(run_dir, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir
        self.lock = threading.Lock()
        self.seen451 = set()
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "reject550":
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local == "reject451":
            with self.lock:
                first = address not in self.seen451
                self.seen451.add(address)
            if first:
                return "451 4.3.0 <%s>: Temporary failure, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(a.split("@", 1)[0].lower() == "reject554" for a in envelope.rcpt_tos):
            return "554 5.6.0 Message content rejected"
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.maildir, "%04d" % n)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        auth = session.auth_data
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "auth_user": auth.login.decode() if isinstance(auth, LoginPassword) else None,
                "tls": session.ssl is not None}
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--plain", action="store_true")
    args = ap.parse_args()
    run = os.path.abspath(args.run_dir)
    maildir = os.path.join(run, "mail")
    os.makedirs(maildir, exist_ok=True)
    port = args.port
    if port == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and args.user is not None
              and auth_data.login.decode() == args.user and auth_data.password.decode() == args.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kwargs = dict(hostname="127.0.0.1", port=port, server_hostname="localhost", ready_timeout=10)
    if args.user:
        # aiosmtpd 1.4 does not count implicit TLS as TLS for auth_require_tls (it would hide AUTH): the
        # connection is encrypted from the first byte anyway.
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=not (args.plain or args.implicit_tls))
    if args.implicit_tls:
        kwargs.update(ssl_context=make_cert(run))
    elif not args.plain:
        kwargs.update(tls_context=make_cert(run), require_starttls=True)
    controller = Controller(Handler(maildir), **kwargs)
    controller.start()
    for name, value in (("port", port), ("pid", os.getpid())):
        with open(os.path.join(run, name + ".tmp"), "w") as f:
            f.write("%d\n" % value)
        os.rename(os.path.join(run, name + ".tmp"), os.path.join(run, name))
    print("PORT %d" % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
