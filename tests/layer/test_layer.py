"""The release layer (issue 4), proven self-contained.

Each zip from `./build.sh layer` is unpacked into an *empty root*: nothing but
the layer under /opt, a minimal /etc (hosts, resolv.conf, a CA bundle at
Amazon Linux's path), /dev/null, /dev/urandom and /tmp.  The extension runs
inside it through chroot (arm64 through qemu-aarch64-static copied into the
root, so binfmt_misc is not needed); the local Lambda emulator, the runtime
and the sinks run outside.  The emulator launches a two-line wrapper named
lambda-tracer, which execs chroot, so the process (same pid) registers under
the right name.

Also checked: the binaries are static (no interpreter, no dynamic section,
no GLIBC_ symbol versions), the zip layout and modes, the notices and the
library versions in the binary against layer/sources.lock, the size budget,
and that a rebuild gives the same bytes.

Environment: LAMBDA_TRACER_LAYER_DIR (default build/layer) holds the zips.
Needs root (chroot, mknod), openssl, readelf, file, unzip, qemu-aarch64-static.
"""
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import unittest
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
from common import sinks  # noqa: E402
from common.tls import serve_tls  # noqa: E402  (HTTPS for a sink; shared with bench/)

LAYER_DIR = os.environ.get("LAMBDA_TRACER_LAYER_DIR") or os.path.join(REPO, "build", "layer")
ARCHES = {
    # arch: (what `file` says, qemu needed)
    "x86_64": ("x86-64", None),
    "arm64": ("ARM aarch64", "/usr/bin/qemu-aarch64-static"),
}
ZIP_BUDGET_BYTES = {"x86_64": 500_000, "arm64": 500_000}
LOCK = os.path.join(REPO, "layer", "sources.lock")
XRAY_HOST = "xray.layer.test"
OTLP_HOST = "otlp.layer.test"
AL_CA_PATH = "etc/pki/tls/certs/ca-bundle.crt"
EXPECTED_ENTRIES = ["extensions/", "extensions/lambda-tracer", "lambda-tracer/",
                    "lambda-tracer/THIRD-PARTY-NOTICES.txt"]

PKI = None  # the test CAs and certificates, made once per run


def pinned_versions():
    """{package: Debian version} from layer/sources.lock."""
    out = {}
    with open(LOCK) as f:
        for line in f:
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                out.setdefault(fields[0], fields[1])
    return out


def upstream_version(debian_version):
    """'8.14.1-2+deb13u5' -> '8.14.1' (no epoch, no Debian revision)."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def zip_path(arch):
    return os.path.join(LAYER_DIR, "lambda-tracer-%s.zip" % arch)


def openssl(cwd, *args):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki():
    """Two unrelated test CAs; a server certificate from each for the test
    host names (DNS names: mbedTLS 2.28 does not match IP-address names)."""
    d = tempfile.mkdtemp(prefix="lt-pki-")
    for ca in ("ca1", "ca2"):
        openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=lambda-tracer test " + ca)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s,DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % (XRAY_HOST, OTLP_HOST))
    for ca in ("ca1", "ca2"):
        srv = "srv-" + ca
        openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", srv + ".key", "-out", srv + ".csr", "-subj", "/CN=" + XRAY_HOST)
        openssl(d, "x509", "-req", "-in", srv + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", srv + ".pem", "-days", "2", "-extfile", "ext.cnf")
    return d


def setUpModule():
    global PKI
    if os.geteuid() != 0:
        why = "the empty-root tests need root (chroot, mknod)"
        # ./build.sh test sets this: there, the layer must be proven, not skipped
        if os.environ.get("LAMBDA_TRACER_REQUIRE_ALL") == "1":
            raise RuntimeError(why)
        raise unittest.SkipTest(why)
    PKI = make_pki()


def tearDownModule():
    if PKI:
        shutil.rmtree(PKI, ignore_errors=True)


def server_context(ca, legacy_only=False, versions=None):
    """versions: (lowest, highest) ssl.TLSVersion the server accepts."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(PKI, "srv-%s.pem" % ca), os.path.join(PKI, "srv-%s.key" % ca))
    if versions:
        ctx.minimum_version, ctx.maximum_version = versions
    if legacy_only:
        # A server that speaks nothing newer than TLS 1.1.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


class EmptyRoot:
    """<emu_root>/opt/extensions/lambda-tracer is a wrapper that execs
    chroot into <root>, which holds only what the class doc lists."""

    def __init__(self, arch, extra_files=None):
        self.arch = arch
        self.emu_root = tempfile.mkdtemp(prefix="lt-emu-")
        self.root = tempfile.mkdtemp(prefix="lt-empty-")
        r = self.root
        subprocess.run(["unzip", "-q", zip_path(arch), "-d", os.path.join(r, "opt")], check=True)
        for d in ("etc/pki/tls/certs", "dev", "tmp"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        os.chmod(os.path.join(r, "tmp"), 0o1777)
        # The extension's own host names resolve from /etc/hosts, so no DNS
        # query ever leaves (resolv.conf points at nothing that answers).
        with open(os.path.join(r, "etc/hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 sandbox.localdomain sandbox\n"
                    "127.0.0.1 %s %s\n" % (XRAY_HOST, OTLP_HOST))
        with open(os.path.join(r, "etc/resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        shutil.copy(os.path.join(PKI, "ca1.pem"), os.path.join(r, AL_CA_PATH))
        for name, content in (extra_files or {}).items():
            with open(os.path.join(r, name), "w") as f:
                f.write(content)
        os.mknod(os.path.join(r, "dev/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(os.path.join(r, "dev/urandom"), 0o444 | stat.S_IFCHR, os.makedev(1, 9))
        argv = [shutil.which("chroot") or "/usr/sbin/chroot", r]
        qemu = ARCHES[arch][1]
        if qemu:
            shutil.copy(qemu, os.path.join(r, "qemu-aarch64-static"))
            argv.append("/qemu-aarch64-static")
        argv.append("/opt/extensions/lambda-tracer")
        ext_dir = os.path.join(self.emu_root, "opt", "extensions")
        os.makedirs(ext_dir)
        wrapper = os.path.join(ext_dir, harness.EXT_NAME)
        with open(wrapper, "w") as f:
            # TMPDIR is the emulator's sandbox /tmp outside the root; inside,
            # as on Lambda, there is none and /tmp is the root's.
            f.write("#!/bin/sh\nunset TMPDIR\nexec %s\n" % " ".join(argv))
        os.chmod(wrapper, 0o755)

    def listing(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in dirnames + filenames:
                out.append(os.path.relpath(os.path.join(dirpath, n), self.root))
        return sorted(out)

    def close(self):
        shutil.rmtree(self.emu_root, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def run_environment(arch, setup_sinks, steps, extra_files=None):
    """One environment: Init, the invocations, SHUTDOWN.  setup_sinks(emu)
    attaches the sinks and returns them; they are closed afterwards."""
    box = EmptyRoot(arch, extra_files)
    emu = harness.new_emulator(box.emu_root, timeout_s=3)
    sink_list = setup_sinks(emu)
    try:
        before = box.listing()
        init = emu.start()
        results = [emu.invoke(payload=p) for p in steps]
        subs = emu.subscribers()
        sd = emu.shutdown(reason="spindown")
        return {"init": init, "results": results, "subs": subs, "sd": sd,
                "lines": harness.output_lines(emu), "listing": before,
                "created": sorted(set(box.listing()) - set(before))}
    finally:
        emu.close()
        for s in sink_list:
            s.close()
        box.close()


def xray_sink(emu, tls_ca=None, legacy_only=False, versions=None):
    creds = emu.extension_environment()
    sink = sinks.XRayApiSink(region=emu.region, access_key=creds["AWS_ACCESS_KEY_ID"],
                             secret=creds["AWS_SECRET_ACCESS_KEY"], token=creds["AWS_SESSION_TOKEN"])
    if tls_ca:
        serve_tls(sink, server_context(tls_ca, legacy_only, versions))
        return sink, "https://%s:%d" % (XRAY_HOST, sink.port)
    return sink, sink.endpoint


def otlp_sink(tls_ca=None, legacy_only=False):
    sink = sinks.OtlpSink()
    if tls_ca:
        serve_tls(sink, server_context(tls_ca, legacy_only))
        return sink, "https://%s:%d/v1/traces" % (OTLP_HOST, sink.port)
    return sink, sink.endpoint + "/v1/traces"


STEPS = [b'{"action":"fast"}', b'{"action":"slow","ms":200}', b'{"action":"fast"}']


def keepalive_env(arch):
    """The flush policy for the one-connection checks.  Under qemu the first
    TLS handshake alone takes about 240 ms (measured with Mbed TLS 3.6 on a
    loaded 2-core machine; 14 ms natively), against the eager flush's 250 ms
    budget: a request cut at the budget closes its connection by design, so
    a second handshake would say nothing about keep-alive.  Emulated runs
    flush in the background; native ones keep the eager policy."""
    return {"LAMBDA_TRACER_FLUSH": "background" if ARCHES[arch][1] else "eager"}


def otlp_invocation_ids(bodies):
    ids = set()
    for _, body, _ in bodies:
        for rs in json.loads(body)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    for a in span.get("attributes", []):
                        if a["key"] == "faas.invocation_id":
                            ids.add(a["value"]["stringValue"])
    return ids


class StaticChecks(unittest.TestCase):
    """What the zips hold, and that the binaries need nothing from the host."""

    def binary(self, arch):
        d = tempfile.mkdtemp(prefix="lt-bin-")
        self.addCleanup(shutil.rmtree, d, True)
        with zipfile.ZipFile(zip_path(arch)) as z:
            return z.read("extensions/lambda-tracer"), d

    def test_zip_layout_modes_and_notices(self):
        for arch in ARCHES:
            with self.subTest(arch=arch), zipfile.ZipFile(zip_path(arch)) as z:
                infos = z.infolist()
                self.assertEqual([i.filename for i in infos], EXPECTED_ENTRIES)
                mode = infos[1].external_attr >> 16
                self.assertTrue(stat.S_ISREG(mode))
                # Lambda runs /opt/extensions/<name> as it is: it must be executable.
                self.assertEqual(stat.S_IMODE(mode), 0o755)
                self.assertEqual(stat.S_IMODE(infos[3].external_attr >> 16), 0o644)
                self.assertEqual({i.date_time for i in infos}.__len__(), 1, "one fixed time for all entries")
                notice = z.read(EXPECTED_ENTRIES[3]).decode()
                pins = pinned_versions()
                for needle in ("COPYRIGHT AND PERMISSION NOTICE", "Apache License", "Version 2.0",
                               "GNU GENERAL PUBLIC LICENSE", "Apache-2.0 OR GPL-2.0-or-later",
                               "Dave Gamble", "Rich Felker", "curl " + pins["curl"],
                               "Mbed TLS " + pins["mbedtls"], "cJSON " + pins["cjson"],
                               "zlib " + pins["zlib"], "Jean-loup Gailly"):
                    self.assertIn(needle, notice)

    def test_library_versions_in_binary_are_the_pinned_ones(self):
        """The binary names the libraries it was linked with (from their
        headers, layer/deps_version.c): the pinned upstream versions, so a
        stale library cache cannot pass; and those are maintained lines
        (curl 8, Mbed TLS 3.6 LTS), not the 7.88 / 2.28 they replaced."""
        pins = pinned_versions()
        self.assertEqual(sorted(pins), ["cjson", "curl", "mbedtls", "zlib"])
        # Debian's zlib is "1.3.dfsg+really1.3.1": the upstream release is
        # after "really" (Debian's marker for going back on a version).
        zlib = upstream_version(pins["zlib"]).rsplit("really", 1)[-1]
        want = "lambda-tracer deps: libcurl/%s Mbed TLS %s cJSON/%s zlib/%s" % (
            upstream_version(pins["curl"]), upstream_version(pins["mbedtls"]),
            upstream_version(pins["cjson"]), zlib)
        self.assertRegex(want, r"libcurl/8\.\d+\.\d+ Mbed TLS 3\.6\.\d+ cJSON/1\.7\.\d+ zlib/1\.3\.\d+$")
        for arch in ARCHES:
            with self.subTest(arch=arch):
                data, _ = self.binary(arch)
                found = [m.decode() for m in re.findall(rb"lambda-tracer deps: [ -~]*", data)]
                self.assertEqual(found, [want])
                self.assertNotIn(b"2.28.", found[0].encode())

    def test_binaries_are_static(self):
        for arch, (machine, _) in ARCHES.items():
            with self.subTest(arch=arch):
                data, d = self.binary(arch)
                path = os.path.join(d, "lambda-tracer")
                with open(path, "wb") as f:
                    f.write(data)
                what = subprocess.run(["file", "-b", path], capture_output=True, text=True,
                                      check=True).stdout
                self.assertIn("statically linked", what)
                self.assertIn(machine, what)
                self.assertNotIn("dynamically linked", what)
                self.assertNotIn("interpreter", what)
                phdrs = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True,
                                       check=True).stdout
                self.assertIn("EXEC (Executable file)", phdrs)
                self.assertNotIn("INTERP", phdrs)
                self.assertNotIn("DYNAMIC", phdrs)
                dyn = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                                     check=True).stdout
                self.assertIn("There is no dynamic section in this file.", dyn)
                versions = subprocess.run(["readelf", "-V", path], capture_output=True, text=True,
                                          check=True).stdout
                self.assertIn("No version information found", versions)
                self.assertNotIn(b"GLIBC_", data)
                self.assertNotIn(b"ld-linux", data)
                self.assertNotIn(b"ld-musl", data)

    def test_size_budget(self):
        for arch in ARCHES:
            size = os.path.getsize(zip_path(arch))
            with zipfile.ZipFile(zip_path(arch)) as z:
                binary = z.getinfo("extensions/lambda-tracer").file_size
            print("layer size %s: zip %d bytes, binary %d bytes (stripped)" % (arch, size, binary))
            if arch in ZIP_BUDGET_BYTES:
                self.assertLess(size, ZIP_BUDGET_BYTES[arch])

    def test_rebuild_gives_same_bytes(self):
        """A second build into fresh directories (new object files, new
        stage) gives byte-identical zips."""
        out = tempfile.mkdtemp(prefix="lt-rebuild-")
        self.addCleanup(shutil.rmtree, out, True)
        for arch in ARCHES:
            with self.subTest(arch=arch):
                p = subprocess.run([os.path.join(REPO, "layer", "build-layer.sh"), "--out", out,
                                    "--release-dir", os.path.join(out, "release-" + arch), arch],
                                   capture_output=True, text=True, timeout=600)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                with open(zip_path(arch), "rb") as a, \
                        open(os.path.join(out, "lambda-tracer-%s.zip" % arch), "rb") as b:
                    self.assertTrue(a.read() == b.read(), "rebuilt %s zip differs" % arch)


class EmptyRootRuns(unittest.TestCase):
    """The extension inside the empty root, for each architecture."""

    def check_lifecycle(self, out, arch):
        self.assertEqual(out["init"].status, "success")
        self.assertIn(harness.EXT_NAME, out["init"].extensions)
        self.assertIn(harness.EXT_NAME, out["subs"], "no Telemetry API subscription")
        self.assertEqual(out["subs"][harness.EXT_NAME]["schemaVersion"], "2025-01-29")
        self.assertEqual([r.status for r in out["results"]], ["success"] * len(STEPS))
        ext = out["sd"].extensions[harness.EXT_NAME]
        self.assertTrue(ext.shutdown_delivered)
        self.assertFalse(ext.killed)
        self.assertEqual(ext.exit_code, 0, "\n".join(out["lines"][-20:]))
        self.assertTrue(any("shutdown reason=spindown" in line for line in out["lines"]))
        # The root held nothing but the layer and what the test put there, and
        # the extension wrote only under /tmp (its invocation journal).
        allowed = {"opt", "etc", "dev", "tmp", "qemu-aarch64-static"}
        self.assertEqual({p.split("/")[0] for p in out["listing"]} - allowed, set())
        self.assertEqual([p for p in out["created"] if not p.startswith("tmp/")], [])
        self.assertIn("tmp/.%s.journal" % harness.EXT_NAME, out["created"])

    def run_sinks(self, arch, xray_tls=None, otlp_tls=None, otlp_legacy=False, env=None,
                  extra_files=None, xray_versions=None):
        """An environment exporting to a local X-Ray API sink and an OTLP
        (JSON) sink, each over HTTPS when given the CA of its certificate.
        Returns (run output, X-Ray sink, OTLP sink, request ids)."""
        held = {}

        def setup(emu):
            held["xray"], xray_url = xray_sink(emu, tls_ca=xray_tls, versions=xray_versions)
            held["otlp"], otlp_url = otlp_sink(tls_ca=otlp_tls, legacy_only=otlp_legacy)
            emu.customer_env.update({
                "LAMBDA_TRACER_EXPORTERS": "xray,otlp",
                "LAMBDA_TRACER_XRAY_ENDPOINT": xray_url,
                "LAMBDA_TRACER_OTLP_ENDPOINT": otlp_url,
                "LAMBDA_TRACER_OTLP_PROTOCOL": "http/json",
                "LAMBDA_TRACER_FLUSH": "eager"}, **(env or {}))
            return [held["xray"], held["otlp"]]
        out = run_environment(arch, setup, STEPS, extra_files=extra_files)
        self.check_lifecycle(out, arch)
        return out, held["xray"], held["otlp"], {r.request_id for r in out["results"]}

    def assert_all_documents(self, xray, ids):
        self.assertEqual(xray.bad_signatures, [])
        self.assertEqual({d["aws"]["request_id"] for d in xray.documents
                          if "aws" in d and "request_id" in d["aws"]}, ids)

    def assert_connections_reused(self, arch, sink, version):
        """Every connection speaks the version and is kept alive: natively (the eager
        policy, one request at a time) one connection carries every request; under qemu
        (background flushes, which may overlap) never more than the requests the exporter
        may have in flight at once (8)."""
        self.assertTrue(sink.handshakes)
        self.assertEqual(set(sink.handshakes), {("ok", version)}, sink.handshakes)
        most = min(8, len(sink.requests)) if ARCHES[arch][1] else 1
        self.assertLessEqual(len(sink.handshakes), most,
                             "%d connections for %d requests" % (len(sink.handshakes), len(sink.requests)))

    def test_http_and_https_exports(self):
        """X-Ray over HTTPS to a server that speaks up to TLS 1.2 (CA from
        Amazon Linux's path, SigV4 checked, TLS connections kept alive
        across requests), OTLP over HTTP."""
        for arch in ARCHES:
            with self.subTest(arch=arch):
                out, xray, otlp, ids = self.run_sinks(
                    arch, xray_tls="ca1", xray_versions=(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
                    env=keepalive_env(arch))
                self.assert_all_documents(xray, ids)
                self.assertGreaterEqual(len(xray.requests), 2)
                self.assert_connections_reused(arch, xray, "TLSv1.2")
                self.assertEqual(otlp_invocation_ids(otlp.bodies), ids)
                self.assertTrue(any("HTTPS CA bundle: /" + AL_CA_PATH in line for line in out["lines"]))

    def test_tls_1_3_exports(self):
        """A server that speaks only TLS 1.3 gets every document over
        kept-alive TLS 1.3 connections (its session tickets, sent after the
        handshake, do not break the reuse), SigV4 checked; a server that
        offers 1.2 and 1.3 gets 1.3."""
        for arch in ARCHES:
            for versions in ((ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3),
                             (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)):
                with self.subTest(arch=arch, server=versions[0].name + "-" + versions[1].name):
                    out, xray, otlp, ids = self.run_sinks(arch, xray_tls="ca1", xray_versions=versions,
                                                          env=keepalive_env(arch))
                    self.assert_all_documents(xray, ids)
                    self.assertGreaterEqual(len(xray.requests), 2)
                    self.assert_connections_reused(arch, xray, "TLSv1.3")
                    self.assertEqual(otlp_invocation_ids(otlp.bodies), ids)

    def assert_legacy_server_works(self):
        """The TLS 1.1-only server is real: a client allowed TLS 1.1 gets through."""
        probe, _ = otlp_sink(tls_ca="ca1", legacy_only=True)
        try:
            cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            cctx.load_verify_locations(os.path.join(PKI, "ca1.pem"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                cctx.minimum_version = ssl.TLSVersion.TLSv1_1
            cctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with socket.create_connection(("127.0.0.1", probe.port), timeout=5) as s, \
                    cctx.wrap_socket(s, server_hostname=OTLP_HOST) as t:
                self.assertEqual(t.version(), "TLSv1.1")
        finally:
            probe.close()

    def test_tls_below_1_2_is_refused_and_http_still_signed(self):
        """X-Ray over plain HTTP (SigV4 checked); OTLP to a server that
        speaks only TLS 1.0/1.1 gets nothing, though it is tried."""
        self.assert_legacy_server_works()
        for arch in ARCHES:
            with self.subTest(arch=arch):
                out, xray, otlp, ids = self.run_sinks(arch, otlp_tls="ca1", otlp_legacy=True)
                self.assert_all_documents(xray, ids)
                self.assertEqual(otlp.bodies, [])
                self.assertGreater(len(otlp.handshakes), 0, "the TLS 1.1 endpoint was never tried")
                self.assertEqual({h[0] for h in otlp.handshakes}, {"failed"})

    def test_ca_file_override_replaces_the_default(self):
        """LAMBDA_TRACER_CA_FILE names a bundle with only the second CA: the
        OTLP endpoint (second CA) is trusted, the X-Ray one (first CA, the
        one at Amazon Linux's path) no longer is: certificates are checked."""
        with open(os.path.join(PKI, "ca2.pem")) as f:
            ca2 = f.read()
        for arch in ARCHES:
            with self.subTest(arch=arch):
                out, xray, otlp, ids = self.run_sinks(
                    arch, xray_tls="ca1", otlp_tls="ca2",
                    env={"LAMBDA_TRACER_CA_FILE": "/etc/private-ca.pem"},
                    extra_files={"etc/private-ca.pem": ca2})
                self.assertEqual(otlp_invocation_ids(otlp.bodies), ids)
                self.assertTrue(otlp.handshakes and all(h[0] == "ok" for h in otlp.handshakes))
                # libcurl checks the peer after mbedTLS's handshake, so the
                # server sees handshakes complete, but no request follows.
                self.assertGreater(len(xray.handshakes), 0, "the X-Ray endpoint was never tried")
                self.assertEqual(xray.requests, [])
                self.assertEqual(xray.documents, [])
                summary = [line for line in out["lines"] if " export submitted=" in line]
                self.assertEqual(len(summary), 1, out["lines"][-5:])
                self.assertRegex(summary[0], r" xray_sent=0 xray_failed=[1-9]")
                self.assertTrue(any("HTTPS CA bundle: /etc/private-ca.pem" in line for line in out["lines"]))

if __name__ == "__main__":
    unittest.main()
