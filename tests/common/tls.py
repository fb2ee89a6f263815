"""A throw-away certificate authority and an HTTPS front for a sink (tests/common/sinks.py).

make_pki(hosts) -> directory with ca.pem (the CA), srv.pem / srv.key (a server certificate for
the given DNS names, signed by the CA; DNS names because mbedTLS 2.28 did not match IP-address
names).  serve_tls(sink, ca_dir) makes a sink answer over TLS and records each handshake.
Needs the openssl command line tool.
"""
import os
import ssl
import subprocess
import tempfile


def _openssl(cwd, *args):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(hosts=("localhost",), days=2):
    d = tempfile.mkdtemp(prefix="lt-pki-")
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", str(days), "-subj", "/CN=lambda-tracer test CA")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % ",".join("DNS:" + h for h in hosts))
    _openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=" + hosts[0])
    _openssl(d, "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", str(days), "-extfile", "ext.cnf")
    return d


def server_context(pki_dir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki_dir, "srv.pem"), os.path.join(pki_dir, "srv.key"))
    return ctx


def serve_tls(sink, ctx):
    """Turns a sink into an HTTPS one (same port); sink.handshakes gets ("ok", version) or
    ("failed", reason) per connection."""
    sink.handshakes = []
    raw = sink.server.socket

    def get_request():
        conn, addr = raw.accept()
        conn.settimeout(10)
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sink.handshakes.append(("failed", str(e)))
            conn.close()
            raise OSError("handshake failed")  # socketserver drops the request
        tls.settimeout(None)
        sink.handshakes.append(("ok", tls.version()))
        return tls, addr

    sink.server.get_request = get_request
    return sink
