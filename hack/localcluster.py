#!/usr/bin/env python3
"""A throwaway Kubernetes control plane on loopback, for the tests and by hand.

Real etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built by
``hack/build-control-plane.sh``) plus kwok, which plays the kubelets of fake
nodes through the Stage documents in ``hack/kwok/``.  Everything lives in one
directory on tmpfs: a fresh PKI, etcd's data, the kubeconfig and the logs.

    python hack/localcluster.py up            # start, print the kubeconfig, wait for Ctrl-C
    python hack/localcluster.py up --background
    python hack/localcluster.py env           # `export KUBECONFIG=...` for the background one
    python hack/localcluster.py down          # stop the background one

From Python (pytest does this)::

    cluster = localcluster.start(localcluster.ensure_binaries())
    ...                                       # cluster.kubeconfig, cluster.server
    cluster.stop()

Only the standard library and ``cryptography`` are used, so the launcher works
before anything else of the project is installed.  Every failure we expect
(no Go toolchain, a component that will not start) is a :class:`Unavailable`
whose message is one line saying what is missing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HACK = Path(__file__).resolve().parent
KWOK_DIR = HACK / "kwok"
# Where `up --background` records what `down` must stop; set it to run several.
STATE_FILE = Path(
    os.environ.get("ROLLBACK_CLUSTER_STATE")
    or Path(tempfile.gettempdir()) / "rollback-localcluster.json"
)
# The annotation kwok manages nodes by; nodes without it are left alone.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


class Unavailable(Exception):
    """The control plane cannot be built or started; ``str()`` is one line saying why."""


# --- versions and binaries ----------------------------------------------------------------


def versions() -> dict[str, str]:
    """The pins from ``hack/versions.env`` (the only place they are written)."""
    pins: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip().strip('"')
    return pins


def cache_dir() -> Path:
    """Where the build script puts the binaries of the pinned versions."""
    pins = versions()
    root = os.environ.get("ROLLBACK_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rollback-controller"
    )
    key = f"kube-{pins['KUBE_VERSION']}_etcd-{pins['ETCD_VERSION']}_kwok-{pins['KWOK_VERSION']}"
    return Path(root) / key


def bin_dir() -> Path:
    return cache_dir() / "bin"


def binaries_ready(directory: Path | None = None) -> bool:
    """True when the build finished (``.complete``) and every binary is executable."""
    directory = directory or bin_dir()
    if not (directory.parent / ".complete").is_file():
        return False
    return all(os.access(directory / name, os.X_OK) for name in COMPONENTS)


def ensure_binaries(build: bool = True, progress: Callable[[str], None] | None = None) -> Path:
    """The bin directory of the pinned control plane, building it first if needed.

    A cold build takes 10-30 minutes; ``progress`` receives each line the build
    script writes to stderr.  Raises :class:`Unavailable` with the script's own
    one-line reason (for example that ``go`` is not on PATH).
    """
    directory = bin_dir()
    if binaries_ready(directory):
        return directory
    if not build:
        raise Unavailable(
            f"the control-plane binaries are not built in {directory}; "
            "run hack/build-control-plane.sh"
        )
    bash = shutil.which("bash")
    if bash is None:
        raise Unavailable("cannot build the control plane: 'bash' is not on PATH")
    proc = subprocess.Popen(
        [bash, str(HACK / "build-control-plane.sh")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    # Lines reach ``progress`` one behind, so the last one (on failure, the reason)
    # is not printed twice: the caller reports it through Unavailable.
    pending: str | None = None
    for raw in proc.stderr:
        if pending is not None and progress is not None:
            progress(pending)
        pending = raw.rstrip("\n")
    code = proc.wait()
    if code == 0 and binaries_ready(directory):
        if pending is not None and progress is not None:
            progress(pending)
        return directory
    reason = (pending or "").removeprefix("control plane:").strip()
    reason = reason.removeprefix("cannot build:").strip()
    raise Unavailable(
        f"cannot build the local control plane: "
        f"{reason or f'hack/build-control-plane.sh exited with {code}'}"
    )
    return directory


# --- PKI ----------------------------------------------------------------------------------


def _pki(directory: Path) -> None:
    """One CA; a serving cert for the API server; one admin client cert; an SA key.

    One admin identity (organisation system:masters) serves every component: this
    cluster exists for tests, and RBAC is still enforced for every other user.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise Unavailable(
            "the Python package 'cryptography' is missing (it makes the throwaway PKI); "
            "run with .venv/bin/python or pip install cryptography"
        ) from None

    now = dt.datetime.now(dt.UTC)

    def write_key(name: str, key: Any) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / name).write_bytes(pem)

    def name_of(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name_of("rollback-controller-test-ca")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key("ca.key", ca_key)

    def leaf(
        stem: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(f"{stem}.key", key)

    service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    dns = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    leaf(
        "apiserver",
        name_of("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName(d) for d in dns]
        + [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(service_ip)],
    )
    leaf(
        "admin",
        name_of("rollback-test-admin", "system:masters"),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key("sa.key", sa_key)
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _kubeconfig(pki: Path, server: str) -> dict[str, Any]:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "rollback-local",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "rollback-test-admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "rollback-local",
                "context": {"cluster": "rollback-local", "user": "rollback-test-admin"},
            }
        ],
        "current-context": "rollback-local",
    }


# --- kwok stages ----------------------------------------------------------------------------


def render_stages(source: Path = KWOK_DIR / "stages.yaml") -> str:
    """``hack/kwok/stages.yaml`` with its ``@include`` lines and ``@{...}`` snippets filled in.

    A line ``@include FILE`` becomes ``snippets/FILE`` indented like the line; ``@{FILE}``
    inside a line becomes the snippet on one line (comment lines dropped), which is how
    one jq expression serves several stages.
    """
    snippets = source.parent / "snippets"
    out: list[str] = []
    for line in source.read_text().splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            out.append(line)
            continue
        if stripped.startswith("@include "):
            indent = line[: len(line) - len(stripped)]
            body = (snippets / stripped.removeprefix("@include ").strip()).read_text()
            out.extend(indent + part if part else "" for part in body.splitlines())
            continue
        while "@{" in line:
            start = line.index("@{")
            end = line.index("}", start)
            body = (snippets / line[start + 2 : end]).read_text().splitlines()
            inline = " ".join(
                p.strip() for p in body if p.strip() and not p.lstrip().startswith("#")
            )
            line = line[:start] + inline + line[end + 1 :]
        out.append(line)
    return "\n".join(out) + "\n"


# --- processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the launching process dies.

    Backs up the normal teardown when pytest itself is killed; a background
    cluster (``up --background``) does not use it.
    """
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes; /proc tells them apart.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _kill_groups(pids: list[int], grace: float = 1.0) -> None:
    """SIGTERM each process group, wait up to ``grace`` seconds, then SIGKILL what is left.

    The data is thrown away, so a graceful shutdown buys nothing but time.
    """
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)  # ours: reap it
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # not ours (`down`): wait for init to see it die


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(t.strip() for t in text[-lines:])


def _tmpfs_root() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove run directories whose launcher died without cleaning up (killed with -9).

    Their processes died with the launcher (parent-death signal); only the tmpfs
    directory is left, and tmpfs is memory.
    """
    removed: list[Path] = []
    for run_dir in (root or _tmpfs_root()).glob("rollback-cp-*"):
        try:
            owner = int((run_dir / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        pids = _read_pids(run_dir)
        if not _alive(owner) and not any(_alive(p) for p in pids):
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(run_dir)
    return removed


def _read_pids(run_dir: Path) -> list[int]:
    try:
        return [int(p) for p in json.loads((run_dir / "pids.json").read_text()).values()]
    except (OSError, ValueError, AttributeError):
        return []


# --- the cluster ----------------------------------------------------------------------------


@dataclass
class LocalCluster:
    """A running control plane; :meth:`stop` removes every trace of it."""

    run_dir: Path
    server: str
    nodes: list[str]
    pids: dict[str, int] = field(default_factory=dict)
    started_in: float = 0.0
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    def stop(self, keep_logs: bool = False) -> Path | None:
        """Kill every component's process group and delete the run directory.

        With ``keep_logs`` the logs are first copied to a directory under /tmp,
        which is returned.
        """
        order = [n for n in reversed(COMPONENTS) if n in self.pids]
        _kill_groups([self.pids[n] for n in order])
        for proc in self._procs.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        kept = None
        if keep_logs and self.logs.is_dir():
            kept = Path(tempfile.mkdtemp(prefix="rollback-cp-logs-"))
            shutil.copytree(self.logs, kept, dirs_exist_ok=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.pids.clear()
        return kept

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        """One API call as the admin; the decoded JSON answer."""
        return _request(self._ssl(), self.server, method, path, body, timeout=timeout)

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def state(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "nodes": self.nodes,
            "pids": self.pids,
        }


def _request(
    ctx: ssl.SSLContext | None,
    server: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    timeout: float = 5.0,
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        raw = resp.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def start(
    binaries: Path,
    *,
    nodes: int = 1,
    background: bool = False,
    timeout: float = 90.0,
    progress: Callable[[str], None] | None = None,
) -> LocalCluster:
    """Start etcd, the three Kubernetes components and kwok; return once usable.

    Usable means: /readyz answers ok, the ``default`` ServiceAccount exists (the
    controller-manager runs), and every fake node is Ready without the not-ready
    taint (kwok and the node lifecycle controller run).  On any failure everything
    started so far is stopped, the logs are kept under /tmp and :class:`Unavailable`
    says which component failed and where the logs are.  ``background`` lets the
    components outlive this process (``up --background``).
    """
    sweep_stale()
    for attempt in (1, 2):
        try:
            return _start_once(binaries, nodes, background, timeout, progress)
        except Unavailable as err:
            # Free ports are picked, then bound by the component: another cluster
            # starting at the same moment can win one.  That race deserves one retry.
            if attempt == 2 or "address already in use" not in str(err):
                raise
    raise AssertionError("unreachable")


def _start_once(
    binaries: Path,
    nodes: int,
    background: bool,
    timeout: float,
    progress: Callable[[str], None] | None,
) -> LocalCluster:
    launcher = _Launcher(binaries, nodes, background, timeout, progress)
    try:
        launcher.run()
    except Unavailable:
        raise
    except Exception as err:
        kept = launcher.cluster.stop(keep_logs=True)
        raise Unavailable(
            f"the local control plane did not start: {type(err).__name__}: {err} (logs: {kept})"
        ) from err
    except BaseException:  # Ctrl-C or SystemExit while starting: leave nothing behind
        launcher.cluster.stop()
        raise
    return launcher.cluster


class _Launcher:
    """The start-up sequence, one method per component (see :func:`start`)."""

    def __init__(
        self,
        binaries: Path,
        nodes: int,
        background: bool,
        timeout: float,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.binaries = binaries
        self.background = background
        self.timeout = timeout
        self.say = progress or (lambda _msg: None)
        self.began = time.monotonic()
        run_dir = Path(tempfile.mkdtemp(prefix="rollback-cp-", dir=_tmpfs_root()))
        (run_dir / "owner.pid").write_text(str(os.getpid()))
        for sub in ("pki", "logs", "etcd", "certs"):
            (run_dir / sub).mkdir(mode=0o700)
        self.ports = {
            name: _free_port()
            for name in ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler", "kwok")
        }
        self.cluster = LocalCluster(
            run_dir=run_dir,
            server=f"https://127.0.0.1:{self.ports['apiserver']}",
            nodes=[f"kwok-node-{i}" for i in range(nodes)],
        )
        self.pki = self.cluster.pki

    def run(self) -> None:
        cluster = self.cluster
        _pki(self.pki)
        cluster.kubeconfig.write_text(json.dumps(_kubeconfig(self.pki, cluster.server), indent=2))
        (cluster.run_dir / "kwok-stages.yaml").write_text(render_stages())
        self.etcd()
        self.apiserver()
        self.say("kube-controller-manager, kube-scheduler, kwok")
        self.controller_manager()
        self.scheduler()
        self.kwok()
        for name in cluster.nodes:
            cluster.request("POST", "/api/v1/nodes", node_manifest(name))
        self.say("waiting for the default ServiceAccount and Ready nodes")
        self.wait(
            "the default ServiceAccount",
            "kube-controller-manager",
            lambda: bool(
                cluster.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
            ),
        )
        for name in cluster.nodes:
            self.wait(
                f"node {name} Ready",
                "kwok",
                lambda n=name: node_ready(cluster.request("GET", f"/api/v1/nodes/{n}")),
            )
        cluster.started_in = time.monotonic() - self.began

    def etcd(self) -> None:
        self.say("etcd")
        client, peer = (f"http://127.0.0.1:{self.ports[p]}" for p in ("etcd", "etcd-peer"))
        self.spawn(
            "etcd",
            "--name=rollback",
            f"--data-dir={self.cluster.run_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=rollback={peer}",
            "--unsafe-no-fsync",  # throwaway data on tmpfs: durability buys nothing
            "--log-level=warn",
        )
        self.wait(
            "etcd healthy",
            "etcd",
            lambda: _request(None, client, "GET", "/health")["health"] == "true",
        )

    def apiserver(self) -> None:
        self.say("kube-apiserver")
        pki = self.pki
        self.spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={self.cluster.run_dir / 'certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=RBAC",  # so RBAC tests meet a real "forbidden"
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",  # no real endpoint to publish
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        )
        ctx = self.cluster._ssl()
        self.wait(
            "kube-apiserver /readyz ok",
            "kube-apiserver",
            lambda: _request(ctx, self.cluster.server, "GET", "/readyz") == "ok",
        )

    def controller_manager(self) -> None:
        pki = self.pki
        self.spawn(
            "kube-controller-manager",
            f"--kubeconfig={self.cluster.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['kcm']}",
            f"--cert-dir={self.cluster.run_dir / 'certs'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",  # one instance; skip the lease round trip at start
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
            "--v=1",
        )

    def scheduler(self) -> None:
        self.spawn(
            "kube-scheduler",
            f"--kubeconfig={self.cluster.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
            f"--cert-dir={self.cluster.run_dir / 'certs'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        )

    def kwok(self) -> None:
        key, value = KWOK_NODE_ANNOTATION
        self.spawn(
            "kwok",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--config={self.cluster.run_dir / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            "--node-lease-duration-seconds=40",
            "--node-ip=10.255.0.1",  # for nodes created without an InternalIP
            f"--cidr={POD_CIDR}",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
        )

    def spawn(self, name: str, *args: str) -> None:
        cluster = self.cluster
        with (cluster.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(self.binaries / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cluster.run_dir,
                start_new_session=True,  # its own process group: teardown kills the group
                preexec_fn=None if self.background else _die_with_parent,  # noqa: PLW1509
            )
        cluster._procs[name] = proc
        cluster.pids[name] = proc.pid
        (cluster.run_dir / "pids.json").write_text(json.dumps(cluster.pids))

    def wait(self, what: str, component: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` until true; fail early if any component exits."""
        deadline = self.began + self.timeout
        last_error = ""
        while time.monotonic() < deadline:
            for name, proc in self.cluster._procs.items():
                if proc.poll() is not None:
                    log = _tail(self.cluster.logs / f"{name}.log")
                    self.fail(f"{name} exited with code {proc.returncode}: {log}")
            try:
                if check():
                    return
            except Exception as err:  # any failure of a probe means "not yet"
                last_error = str(err)
            time.sleep(0.1)
        detail = f" (last error: {last_error})" if last_error else ""
        log = _tail(self.cluster.logs / f"{component}.log")
        self.fail(f"{what} not within {self.timeout:.0f}s{detail}: {component}: {log}")

    def fail(self, message: str) -> None:
        kept = self.cluster.stop(keep_logs=True)
        raise Unavailable(f"the local control plane did not start: {message} (logs: {kept})")


def node_manifest(
    name: str, labels: dict[str, str] | None = None, address: str | None = None
) -> dict[str, Any]:
    """A Node that kwok manages: it becomes Ready and runs pods scheduled onto it.

    ``address`` is its InternalIP (pods on it report it as hostIP); by default one
    derived from the name, so that nodes differ.
    """
    key, value = KWOK_NODE_ANNOTATION
    if address is None:
        digest = zlib.crc32(name.encode())
        address = f"10.255.{digest >> 8 & 0x7F | 0x80}.{digest % 254 + 1}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
                **(labels or {}),
            },
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        },
    }


def node_ready(node: dict[str, Any]) -> bool:
    """Ready condition True and no not-ready taint left (the scheduler would skip it)."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key") == "node.kubernetes.io/not-ready" for t in taints)


# --- command line ---------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit so ``finally`` blocks tear down."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _load_state() -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    return state


def _cmd_up(args: argparse.Namespace) -> int:
    state = _load_state()
    if state and any(_alive(p) for p in state.get("pids", {}).values()):
        print(
            f"a local control plane is already running (kubeconfig {state['kubeconfig']}); "
            "run `python hack/localcluster.py down` first",
            file=sys.stderr,
        )
        return 1
    try:
        binaries = ensure_binaries(progress=lambda line: print(line, file=sys.stderr))
        with _terminate_on_signals():
            cluster = start(
                binaries,
                nodes=args.nodes,
                background=args.background,
                progress=lambda msg: print(f"starting: {msg}", file=sys.stderr),
            )
    except Unavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"control plane up in {cluster.started_in:.1f}s: {cluster.server}", file=sys.stderr)
    if args.background:
        STATE_FILE.write_text(json.dumps(cluster.state(), indent=2))
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        print("stop it with: python hack/localcluster.py down", file=sys.stderr)
        return 0
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    print("press Ctrl-C to stop", file=sys.stderr)
    try:
        with _terminate_on_signals():
            while all(p.poll() is None for p in cluster._procs.values()):
                time.sleep(0.5)
        dead = [n for n, p in cluster._procs.items() if p.poll() is not None]
        print(f"error: {', '.join(dead)} exited; stopping", file=sys.stderr)
        kept = cluster.stop(keep_logs=True)
        print(f"logs kept in {kept}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


def _cmd_down(_args: argparse.Namespace) -> int:
    state = _load_state()
    if state is None:
        print("no background control plane is recorded; nothing to stop", file=sys.stderr)
        return 0
    pids = list(state.get("pids", {}).values())
    _kill_groups(pids)
    left = [p for p in pids if _alive(p)]
    shutil.rmtree(state["run_dir"], ignore_errors=True)
    STATE_FILE.unlink(missing_ok=True)
    if left:
        print(f"error: processes {left} are still alive", file=sys.stderr)
        return 1
    print("control plane stopped", file=sys.stderr)
    return 0


def _cmd_env(_args: argparse.Namespace) -> int:
    state = _load_state()
    if state is None or not any(_alive(p) for p in state.get("pids", {}).values()):
        print(
            "error: no background control plane is running; "
            "start one with `python hack/localcluster.py up --background`",
            file=sys.stderr,
        )
        return 1
    print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0


def running(tag: str | None = None) -> list[tuple[int, str]]:
    """Processes running a binary from our cache: (pid, command line), oldest first.

    With ``tag``, only those whose environment has ``ROLLBACK_CP_TAG=<tag>``: the
    components inherit it from whoever started them, so a test run that sets it
    can find exactly what it left behind, even with other clusters running.
    """
    prefix = str(bin_dir()) + "/"
    found: list[tuple[int, str]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv[0].decode(errors="replace").startswith(prefix):
                continue
            if tag is not None:
                environ = (proc / "environ").read_bytes().split(b"\0")
                if f"ROLLBACK_CP_TAG={tag}".encode() not in environ:
                    continue
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if _alive(int(proc.name)):
            found.append((int(proc.name), b" ".join(argv).decode(errors="replace").strip()))
    return sorted(found)


def _cmd_ps(args: argparse.Namespace) -> int:
    for pid, cmdline in running(args.tag):
        print(pid, cmdline[:160])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="localcluster.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a control plane (builds the binaries if needed)")
    up.add_argument("--background", "-d", action="store_true", help="return once it is up")
    up.add_argument("--nodes", type=int, default=1, help="fake kwok nodes (default 1)")
    up.set_defaults(run=_cmd_up)
    sub.add_parser("down", help="stop the background control plane").set_defaults(run=_cmd_down)
    sub.add_parser("env", help="print `export KUBECONFIG=...`").set_defaults(run=_cmd_env)
    ps = sub.add_parser("ps", help="list running control-plane processes from our cache")
    ps.add_argument("--tag", help="only those started with ROLLBACK_CP_TAG=TAG")
    ps.set_defaults(run=_cmd_ps)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
