"""`flowforge serve --workers N`: whether this deployment may serve the API from several
processes, and the start-up each process would otherwise do, done once. Light on purpose:
uvicorn's supervisor imports this, not the app, so it does not hold the app's ~140 MiB of
modules while the worker processes serve."""

from __future__ import annotations

import logging
import socket

from uvicorn.config import Config
from uvicorn.supervisors import multiprocess

from flowforge_shared.settings import SERVICES_WITH_DATABASES, Settings, UnsafeSettings


def replicas_refused(settings: Settings) -> str | None:
    """Why this deployment cannot serve the API from several processes (``flowforge serve
    --workers N``), or None when it can. What each process starts, and why N copies of it
    are safe or not, is listed in docs/architecture.md, "Several API processes"."""
    if settings.embedded_tasks:
        return (
            "--workers needs FLOWFORGE_BROKER_URL: without a broker, jobs, the reaper and the "
            "scheduler run inside the server process, once per process (run `flowforge worker "
            "ingest|transform|events|catalog|lineage` and `flowforge scheduler` beside the API)"
        )
    on_sqlite = [
        name
        for name in SERVICES_WITH_DATABASES
        if settings.database_url_for(name).startswith("sqlite")
    ]
    if on_sqlite:
        names = ", ".join(on_sqlite[:-1]) + " and " * (len(on_sqlite) > 1) + on_sqlite[-1]
        return (
            f"--workers needs PostgreSQL: the {names} database"
            f"{'s are' if len(on_sqlite) > 1 else ' is'} SQLite, which has no row locks to keep "
            "processes apart and takes one writer at a time (set FLOWFORGE_DATABASE_URL)"
        )
    return None


logger = logging.getLogger("uvicorn.error")


def prepare_deployment() -> str | None:
    """Build the app once, unserved, and release it: the migrations (when on), the first
    admin token, the local key file, the built-in templates' upgrade, and every refusal of
    the settings, before any worker process starts (run in a process of its own: see
    :func:`prepare_apart`). Returns the refusal (one line), or None."""
    from flowforge.app import create_app
    from flowforge_shared.web import close_unserved

    try:
        application = create_app(Settings())
    except UnsafeSettings as error:
        return str(error)
    close_unserved(application)
    return None


def prepare_apart() -> str | None:
    """:func:`prepare_deployment` in a fresh process (spawned, as uvicorn's workers are)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(prepare_deployment)


# -- Spreading connections over the worker processes --------------------------------------
#
# uvicorn's supervisor binds one socket and hands it to every worker: the processes then
# wait in accept() on that one socket and Linux wakes them unevenly, so 50 keep-alive
# connections opened at once often all land in one process. With SO_REUSEPORT each worker
# listens on a socket of its own bound to the same host:port, and the kernel hashes each new
# connection (by its addresses and ports) to one of the listening sockets of the group.
# uvicorn (0.54) has no option for it: uvicorn's own supervisor is kept (replacing a dead or
# silent worker, the health pings, SIGTERM/SIGINT, SIGHUP/SIGTTIN/SIGTTOU) with each worker
# process made to bind its own socket.

REUSE_PORT = hasattr(socket, "SO_REUSEPORT")  # Linux, BSD, macOS; not Windows


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port in the port's SO_REUSEPORT group (as uvicorn's
    ``Config.bind_socket`` binds, plus SO_REUSEPORT). It takes connections once listening:
    the worker process calls listen() when its app is built."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker process handed a socket of its own instead of the shared one. The
    supervisor's copy is closed when the worker is stopped or killed (every path that
    retires a worker calls one of the two), so the socket leaves the group when the worker's
    copy goes too: the kernel hashes no connection to a socket nobody will accept from.
    Connections already queued on it, not yet accepted, are reset by the kernel."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.socket = reuse_port_socket(config.host, config.port)
        super().__init__(config, [self.socket])

    def terminate(self) -> None:
        self.socket.close()  # the worker keeps its copy while it finishes its requests
        super().terminate()

    def kill(self) -> None:
        self.socket.close()
        super().kill()


def serve_replicas(config: Config) -> None:
    """Run ``config.workers`` worker processes under uvicorn's supervisor, each listening
    on its own SO_REUSEPORT socket; without SO_REUSEPORT, on one shared socket (uvicorn's
    own way, ``uvicorn.run(workers=N)``)."""
    if not REUSE_PORT:
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    # Bound first and never listening (so no connection is hashed to it): it gives the port
    # when asked for port 0, and keeps the port this server's while a dead worker's socket
    # is closed and its replacement's not yet bound.
    anchor = reuse_port_socket(config.host, config.port)
    config.port = anchor.getsockname()[1]
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", config.host, config.port)
    # The supervisor makes its workers as `Process(config, sockets)`, a name of its module.
    multiprocess.Process = _OwnSocketProcess  # type: ignore[misc]
    try:
        multiprocess.Multiprocess(config, sockets=[]).run()
    finally:
        multiprocess.Process = _OwnSocketProcess.__base__  # type: ignore[misc]
        anchor.close()
