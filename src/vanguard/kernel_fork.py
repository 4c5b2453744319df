"""Notebook kernels forked from one process that has already imported the heavy libraries.

Every notebook of a run starts a kernel, and every analysis kernel then spends three to
four seconds of CPU importing the same libraries (pandas, scipy.stats, pyfixest,
moderndid, statsmodels, matplotlib) before its first estimate: on two cores that is a
third of a cold report. A run therefore starts one *preload process* that imports
:data:`PRELOAD` once and then forks a kernel for each notebook on request. The fork
shares the imported modules' memory copy-on-write and starts working at once.

A forked kernel must behave like a fresh one, so a kernel is forked only when nothing
the preloaded imports could have read differs from what a fresh kernel would see:

* the same interpreter and interpreter flags as the kernel's command line
  (``python -Xfrozen_modules=off -m ipykernel_launcher -f <connection file>``);
* the same working directory (matplotlib reads a ``matplotlibrc`` there at import);
* the same environment, apart from :data:`PER_KERNEL_ENV` (names that only the kernel
  start-up and the project's write log read, never a library at import), with
  ``MPLBACKEND`` defaulted as ``ipykernel`` defaults it before any user code.

The imports themselves are made as a kernel's would be: ``get_ipython()`` answers with a
kernel's shell and ``sys.stdout`` has a kernel's encoding while they run (pandas sets its
display defaults from both), and the project's own package is not imported. A forked
kernel has imported every library in :data:`PRELOAD`, whether or not its notebook does;
the only global settings those imports change are warnings filters for the libraries'
own warning classes and numpy's matrix-subclass notice (``tests/test_kernel_fork.py``
compares a forked kernel's settings, path and environment with a fresh kernel's).

Otherwise, or when the preload process is missing, failed or is not ready, the kernel
is started the usual way; :func:`last_launch` tells the runner which happened, and the
run manifest records it per notebook. In the fork, the environment is replaced by the
kernel's, SIGCHLD (which the preload process ignores, to reap its kernels) is reset, the
process starts a session of its own (as a launched kernel does) and numpy's global random state is re-seeded from the operating
system, as a fresh interpreter's is (the project's analyses all draw from explicit
seeds; this keeps unseeded user code from sharing one stream across notebooks).

The preload process runs this file with the kernel's interpreter: it imports, then
binds a Unix socket ``<folder>/socket`` and writes ``<folder>/ready.json`` (or
``<folder>/failed.txt`` with the error). Each request is one JSON line (``argv``,
``env``, ``cwd``); the answer is one JSON line with the kernel's process id.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "scipy.optimize",
    "statsmodels.api",
    "matplotlib.pyplot",
    "pandera.pandas",
    "polars",
    "pyfixest.estimation",
    "moderndid",
    "jinja2",
)
"""Modules the preload process imports: those the project's notebooks import between
them. Only third-party libraries: the project's own modules read the run's settings
(e.g. ``VANGUARD_CACHE_DIR``) and are imported by each kernel itself."""

PER_KERNEL_ENV: tuple[str, ...] = (
    "JPY_PARENT_PID",
    "JPY_SESSION_NAME",
    "VANGUARD_WRITE_LOG",
)
"""Environment variables that may differ between the preload process and a kernel
forked from it: set per kernel, read only after the kernel starts (ipykernel's parent
check, the notebook's session name, the project's record of the files a job wrote)."""

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
READY_TIMEOUT = 60.0
"""Seconds a kernel start waits for a preload process that is still importing."""

_last: dict[str, Any] = {}


def last_launch() -> dict[str, Any]:
    """How the last kernel of this process started: ``{"kernel": "forked"|"fresh", ...}``.

    ``why`` says why a kernel was started fresh. Empty before any kernel started here.
    """
    return dict(_last)


def kernel_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a kernel's environment that its preloaded imports may have read."""
    out = {k: v for k, v in env.items() if k not in PER_KERNEL_ENV}
    out.pop("PYTHONEXECUTABLE", None)  # jupyter_client drops it for Python kernels
    if not out.get("MPLBACKEND"):
        out["MPLBACKEND"] = INLINE_BACKEND
    return out


def _split_cmd(cmd: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """(interpreter and its flags, ``-f <connection file>``) of an ipykernel command."""
    cmd = list(cmd)
    if "-m" not in cmd:
        return None
    i = cmd.index("-m")
    if cmd[i + 1 : i + 2] != ["ipykernel_launcher"] or len(cmd) != i + 4 or cmd[i + 2] != "-f":
        return None
    return cmd[:i], cmd[i + 2 :]


def mismatch(
    ready: Mapping[str, Any], cmd: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike
) -> str:
    """Why a kernel cannot be forked from this preload process ("" when it can).

    Parameters
    ----------
    ready : mapping
        The preload process's ``ready.json``.
    cmd, env, cwd
        The command, environment and working directory the kernel would start with.
    """
    parts = _split_cmd(cmd)
    if parts is None:
        return f"the kernel command is not `python -m ipykernel_launcher -f <file>`: {cmd}"
    if parts[0] != list(ready["interpreter"]):
        return f"interpreter {parts[0]} differs from the preload process's {ready['interpreter']}"
    if Path(cwd).resolve() != Path(ready["cwd"]).resolve():
        return f"working directory {cwd} differs from the preload process's {ready['cwd']}"
    want, have = kernel_env(env), kernel_env(ready["env"])
    differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if differ:
        return "environment differs from the preload process's in: " + ", ".join(differ)
    return ""


# --- the preload process ---------------------------------------------------------------


class _KernelShell:
    """What ``get_ipython()`` answers while the preload process imports: a kernel's shell
    (pandas only checks that it has a ``kernel``)."""

    kernel = True


class _KernelStream:
    """A stream that writes through to ``stream`` with a kernel's output encoding
    (ipykernel's ``OutStream.encoding``)."""

    encoding = "UTF-8"

    def __init__(self, stream) -> None:
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # a reader never sees half a file


def _child(
    conn: socket.socket,
    server: socket.socket,
    request: Mapping[str, Any],
    changed_env: Mapping[str, str],
    removed_env: Sequence[str],
) -> None:
    """Become the kernel (runs in the fork; never returns)."""
    code = 1
    try:
        conn.close()
        server.close()
        os.setsid()  # as a launched kernel: its own session, interrupted as a group
        # the one disposition the preload process changed (the others are a fresh
        # interpreter's, SIGPIPE ignored included)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # as the imports left them in a fresh kernel (the kernel's environment was checked
        # to be the one they started from)
        os.environ.update(changed_env)
        for name in removed_env:
            os.environ.pop(name, None)
        # ipykernel stops when its parent changes: the parent is this preload process
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # a fresh interpreter's unseeded state
        sys.argv = ["ipykernel_launcher", *request["argv"][-2:]]
        import runpy

        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever kills the kernel is printed first
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """Ask the operating system for SIGTERM when the runner that started this process dies.

    A runner killed outright (SIGKILL) cannot stop its preload process; this way it
    stops by itself, and its kernels, whose parent it is, stop when it does. Linux only;
    elsewhere the next run of the same name stops what is left (``pipeline.RUN_ENV``).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def serve(folder: Path, parent: int | None = None) -> int:
    """Import :data:`PRELOAD`, then fork a kernel for each request (runs until killed)."""
    _die_with_parent()
    if parent is not None and os.getppid() != parent:
        return 1  # the runner died before the request above took effect
    # as ipykernel_launcher: the working directory is not on the path while importing
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)  # as ipykernel, before matplotlib
    start_env = dict(os.environ)  # what the imports saw (some of them add variables)
    t0 = time.perf_counter()
    # pandas asks at import whether it runs in a Jupyter kernel (its column-truncation
    # default differs from a terminal's) and takes its display encoding from sys.stdout:
    # these imports are for kernels, so they are shown a kernel's shell and streams
    builtins.get_ipython = lambda: _KernelShell
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _KernelStream(sys.stdout), _KernelStream(sys.stderr)
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - reported to every kernel start
        (folder / "failed.txt").write_text(f"importing {name}: {type(exc).__name__}: {exc}")
        return 1
    finally:
        del builtins.get_ipython
        sys.stdout, sys.stderr = streams
    gc.collect()
    gc.freeze()  # the imported objects stay out of the forks' collections: fewer copied pages
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped as they exit
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "socket"))
    server.listen(16)
    # what the imports did to the environment (polars appends to a variable a caller may
    # have set already, for one): a fresh kernel importing them would have it too
    changed_env = {
        k: v for k, v in os.environ.items() if start_env.get(k) != v and k not in PER_KERNEL_ENV
    }
    removed_env = [k for k in start_env if k not in os.environ and k not in PER_KERNEL_ENV]
    _write_json(
        folder / "ready.json",
        {
            "pid": os.getpid(),
            "interpreter": sys.orig_argv[: sys.orig_argv.index("-c")],
            "cwd": os.getcwd(),
            "env": start_env,
            "changed_env": changed_env,
            "removed_env": removed_env,
            "preloaded": list(PRELOAD),
            "import_seconds": round(time.perf_counter() - t0, 2),
        },
    )
    # The threads alive at fork time are the bundled jemalloc allocators' background
    # threads (jemalloc's own fork handlers make the child's allocator consistent) and
    # polars' idle spill-file cleaner; neither holds a lock a kernel takes, so Python's
    # general warning about forking a threaded process is silenced, for this call only
    # (the kernels keep the filters a fresh interpreter has).
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                request = json.loads(conn.makefile("rb").readline())
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore",
                        message=r".*multi-threaded, use of fork",
                        category=DeprecationWarning,
                    )
                    pid = os.fork()
                if pid == 0:
                    _child(conn, server, request, changed_env, removed_env)
                reply = {"pid": pid}
            except Exception as exc:  # noqa: BLE001 - the kernel start falls back
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall((json.dumps(reply) + "\n").encode())


# The preload process runs this file by path, not as ``vanguard.kernel_fork``: importing
# the package would run ``vanguard/__init__`` (which sets a warnings filter) in every
# kernel, including those of notebooks that never import the project.
_LAUNCH = (
    "import importlib.util as u, sys; "
    "s = u.spec_from_file_location('vanguard_preload', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m._main(sys.argv[2:]))"
)


class PreloadProcess:
    """The preload process of one run: started by the runner, stopped when the run ends.

    Parameters
    ----------
    kernel_argv : sequence of str
        The kernelspec's command (its interpreter and flags start the preload process).
    cwd : path
        The kernels' working directory.
    env : mapping
        The environment kernels will inherit (the workers' environment).
    """

    def __init__(
        self, kernel_argv: Sequence[str], cwd: str | os.PathLike, env: Mapping[str, str]
    ) -> None:
        parts = _split_cmd([a.replace("{connection_file}", "x") for a in kernel_argv])
        if parts is None:
            raise ValueError(f"not an ipykernel command: {list(kernel_argv)}")
        # a short path: a Unix socket's path is limited to about 100 characters
        self.folder = Path(tempfile.mkdtemp(prefix="vanguard-kernels-"))
        self.proc = subprocess.Popen(
            [*parts[0], "-c", _LAUNCH, __file__, str(self.folder), str(os.getpid())],
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is the runner's to handle
        )

    def stop(self) -> None:
        """Stop the preload process and remove its folder."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


# --- the kernel side -------------------------------------------------------------------


def _wait_ready(folder: Path, timeout: float = READY_TIMEOUT) -> tuple[dict | None, str]:
    """The preload process's ``ready.json``, or None and why it cannot be used."""
    deadline = time.monotonic() + timeout
    while True:
        if (folder / "ready.json").exists():
            return json.loads((folder / "ready.json").read_text()), ""
        if (folder / "failed.txt").exists():
            return None, "preload process failed: " + (folder / "failed.txt").read_text()
        if not folder.exists():
            return None, "preload process has stopped"
        if time.monotonic() > deadline:
            return None, f"preload process not ready after {timeout:.0f} s"
        time.sleep(0.05)


def request_fork(
    folder: Path, cmd: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike
) -> int:
    """Ask the preload process for a kernel; returns its process id."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(folder / "socket"))
        s.sendall(
            (json.dumps({"argv": list(cmd), "env": dict(env), "cwd": str(cwd)}) + "\n").encode()
        )
        reply = json.loads(s.makefile("rb").readline() or b"{}")
    if "pid" not in reply:
        raise OSError(reply.get("error", "no answer from the preload process"))
    return int(reply["pid"])


class ForkedKernel:
    """The part of :class:`subprocess.Popen` that jupyter_client uses, for a forked kernel.

    The kernel is the preload process's child, not this process's: its exit is seen
    through a pidfd (or, where there is none, by signalling it), and its exit status is
    not known (``returncode`` is 0 once it has gone).
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._fd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            if self._fd is not None:
                gone = bool(select.select([self._fd], [], [], 0)[0])
            else:
                try:
                    os.kill(self.pid, 0)
                    gone = False
                except ProcessLookupError:
                    gone = True
            if gone:
                self.returncode = 0
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def kernel_manager_class(folder: str | os.PathLike | None) -> type:
    """A kernel manager class whose kernels fork from the preload process in ``folder``.

    Given to papermill as ``kernel_manager_class``; with ``folder=None`` every kernel
    starts the usual way (and :func:`last_launch` says so).
    """
    # imported here: the preload process imports this module and must not preload
    # jupyter_client's state for the kernels it forks
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    where = None if folder is None else Path(folder)
    _last.clear()  # a job whose kernel never starts must not report the last job's

    class ForkProvisioner(LocalProvisioner):
        """Starts the kernel by fork from the run's preload process, or the usual way."""

        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            env = kwargs.get("env") or dict(os.environ)
            cwd = kwargs.get("cwd") or os.getcwd()
            why = "no preload process"
            if where is not None:
                ready, why = _wait_ready(where)
                if ready is not None:
                    why = mismatch(ready, cmd, env, cwd)
                if not why:
                    try:
                        pid = request_fork(where, cmd, env, cwd)
                    except OSError as exc:
                        why = f"fork request failed: {exc}"
                    else:
                        self.process = ForkedKernel(pid)
                        self.pid = self.pgid = pid  # the fork's first act is os.setsid()
                        self.cwd = cwd
                        _last.clear()
                        _last.update(kernel="forked", preload_pid=ready["pid"])
                        return self.connection_info
            _last.clear()
            _last.update(kernel="fresh", why=why)
            return await super().launch_kernel(cmd, **kwargs)

    class ForkKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any):
            if self.provisioner is None:  # set on restarts
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
                self.provisioner = ForkProvisioner(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
            return await super()._async_pre_start_kernel(**kw)

    return ForkKernelManager


def _main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python kernel_fork.py <folder> <runner pid>", file=sys.stderr)
        return 2
    return serve(Path(argv[0]), int(argv[1]))
