"""Run a real LiteLLM proxy process on 127.0.0.1 and put load on it.

Used by the integration tests, the load and soak tests and ``make bench``; also handy to load-test
your own config.yaml::

    with LiteLLMProxy("examples/litellm/config.yaml") as proxy:
        result = asyncio.run(run_load(proxy.base_url, proxy.master_key, payloads,
                                      concurrency=32, total=1000))
        print(result.summary())

:class:`LiteLLMProxy` starts ``litellm --config ... --host 127.0.0.1`` with a freshly generated
master key (the proxy refuses well-known defaults), waits for ``/health/liveliness``, reports its
resident memory, and stops it (SIGTERM, then SIGKILL) on exit. :func:`run_load` is a bounded
asyncio + httpx client: at most ``total`` requests and ``time_limit_s`` seconds, ``concurrency``
in flight, one latency per request, client time included (as a user sees it).

Several worker processes (``num_workers=2``; ``server="gunicorn"`` for ``--run_gunicorn``): LiteLLM
passes the config to its workers through the ``WORKER_CONFIG`` environment variable (the config
path; the workers inherit the working directory), and each worker loads config.yaml, the plugin
and its router for itself. Two settings are added for them, see :class:`LiteLLMProxy`:
uvicorn's worker health check gets time to pass (``--timeout_worker_healthcheck``; without it
``--num_workers 2`` restarts its workers forever on a busy machine), and each proxy gets a
Prometheus multiprocess folder of its own (LiteLLM's default, one fixed folder under /tmp, is wiped
by every multi-worker proxy that starts).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import ConfigError

LOOPBACK = "127.0.0.1"
#: The ASGI servers :class:`LiteLLMProxy` can run LiteLLM under (``litellm --run_gunicorn``).
SERVERS = ("uvicorn", "gunicorn")
#: Seconds a uvicorn worker gets to answer its supervisor's health check (see :class:`LiteLLMProxy`).
WORKER_HEALTHCHECK_S = 120
#: The plugin's log line format when ``plugin_log_level`` is set: the process id tells workers apart.
PLUGIN_LOG_FORMAT = "%(asctime)s pid=%(process)d %(name)s %(levelname)s: %(message)s"
_PID_LINE = re.compile(r"\bpid=(\d+) adaptive_router\S* \w+: (.*)$")


def new_master_key() -> str:
    """A random proxy master key (``sk-`` + 32 hex digits)."""
    return "sk-" + secrets.token_hex(16)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _litellm_command() -> list[str]:
    exe = Path(sys.executable).parent / "litellm"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from litellm import run_server; sys.exit(run_server())"]


class LiteLLMProxy:
    """A LiteLLM proxy subprocess bound to 127.0.0.1 (a context manager).

    Parameters
    ----------
    config: the proxy's config.yaml.
    env: extra environment variables (the plugin's ``ADAPTIVE_ROUTER_*`` settings, say).
    log_path: where the proxy's stdout/stderr go (a temporary file by default); read it with
        :meth:`log_text` when something fails.
    startup_timeout_s: how long to wait for ``/health/liveliness``.
    cwd: the working directory of the process.
    num_workers: worker processes (``litellm --num_workers``); each loads the config, the plugin
        and the router itself, and all share the port.
    server: ``uvicorn`` (LiteLLM's default) or ``gunicorn`` (``--run_gunicorn``: a gunicorn master
        that imports the app once and forks uvicorn workers).
    worker_healthcheck_s: with uvicorn and ``num_workers > 1``, the seconds a worker has to answer
        its supervisor's health check (``--timeout_worker_healthcheck``). uvicorn's default, 5 s,
        also covers a new worker's start: a spawned worker first re-imports ``litellm`` (~2.5 s of
        CPU) before it can answer, and on a busy 2-core machine it misses the 5 s, is killed as
        hung and replaced by another that misses it too ("Child process [...] died", forever).
    plugin_log_level: also write the plugin's log (logger ``adaptive_router``) at this level, each
        line with its process id (uvicorn only: a ``--log_config`` that each worker applies), so
        that :meth:`plugin_log` can tell workers apart. Default: the plugin's warnings, no ids.
    """

    def __init__(
        self,
        config: str | Path,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        startup_timeout_s: float = 120.0,
        cwd: str | Path | None = None,
        port: int | None = None,
        num_workers: int = 1,
        server: str = "uvicorn",
        worker_healthcheck_s: int = WORKER_HEALTHCHECK_S,
        plugin_log_level: str | None = None,
    ) -> None:
        self.config = Path(config)
        if not self.config.exists():
            raise ConfigError(f"proxy config {self.config} does not exist")
        if num_workers < 1 or server not in SERVERS:
            raise ConfigError(f"num_workers must be >= 1 and server one of {', '.join(SERVERS)}, "
                              f"got {num_workers} and {server!r}")
        if plugin_log_level is not None and server != "uvicorn":
            raise ConfigError("plugin_log_level needs server='uvicorn' (LiteLLM passes --log_config "
                              "to uvicorn only)")
        self.num_workers = int(num_workers)
        self.server = server
        self.worker_healthcheck_s = int(worker_healthcheck_s)
        self.plugin_log_level = plugin_log_level
        self._scratch: Path | None = None  # per-proxy files (log config, Prometheus folder)
        #: the Prometheus multiprocess folder of a multi-worker proxy (one file per worker process)
        self.prometheus_dir: Path | None = None
        self.extra_env = dict(env or {})
        self.port = port or free_port()
        self.master_key = new_master_key()
        self.startup_timeout_s = startup_timeout_s
        self.cwd = Path(cwd) if cwd else None
        if log_path is None:
            import tempfile

            fd, name = tempfile.mkstemp(prefix="litellm-proxy-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LiteLLMProxy:
        env = dict(os.environ)
        env.update({
            "LITELLM_MASTER_KEY": self.master_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
        })
        env.pop("DATABASE_URL", None)
        env.update(self.extra_env)
        cmd = _litellm_command() + ["--config", str(self.config), "--host", LOOPBACK,
                                    "--port", str(self.port)] + self._server_args(env)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.cwd,
                                            start_new_session=True)
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _server_args(self, env: dict[str, str]) -> list[str]:
        """The command-line options (and environment) of the worker setup asked for."""
        args: list[str] = []
        if self.num_workers > 1 or self.plugin_log_level is not None:
            self._scratch = Path(tempfile.mkdtemp(prefix="litellm-proxy-"))
        if self.num_workers > 1:
            args += ["--num_workers", str(self.num_workers)]
            if self.server == "uvicorn":
                args += ["--timeout_worker_healthcheck", str(self.worker_healthcheck_s)]
            if "PROMETHEUS_MULTIPROC_DIR" in self.extra_env:
                self.prometheus_dir = Path(self.extra_env["PROMETHEUS_MULTIPROC_DIR"])
            else:
                assert self._scratch is not None
                self.prometheus_dir = self._scratch / "prometheus"
                self.prometheus_dir.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.prometheus_dir)
        if self.server == "gunicorn":
            args.append("--run_gunicorn")
        if self.plugin_log_level is not None:
            assert self._scratch is not None
            args += ["--log_config", str(self._write_log_config(self._scratch / "log_config.json"))]
        return args

    def _write_log_config(self, path: Path) -> Path:
        """uvicorn's own logging config plus a handler for the plugin's logger (with the pid)."""
        from uvicorn.config import LOGGING_CONFIG

        config = json.loads(json.dumps(LOGGING_CONFIG))
        config["formatters"]["adaptive_router"] = {"format": PLUGIN_LOG_FORMAT}
        config["handlers"]["adaptive_router"] = {"class": "logging.StreamHandler",
                                                 "formatter": "adaptive_router",
                                                 "stream": "ext://sys.stderr"}
        config["loggers"]["adaptive_router"] = {"handlers": ["adaptive_router"], "propagate": False,
                                                "level": str(self.plugin_log_level).upper()}
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/health/liveliness"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the LiteLLM proxy exited with status {self.process.returncode} "
                                   f"while starting; its log:\n{self.log_text()[-4000:]}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"the LiteLLM proxy was not ready within {self.startup_timeout_s:.0f} s; "
                           f"its log:\n{self.log_text()[-4000:]}")

    def alive(self) -> bool:
        """Whether the process runs and answers its liveliness probe."""
        import httpx

        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.base_url}/health/liveliness", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout_s: float = 15.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def __enter__(self) -> LiteLLMProxy:
        """Start the proxy unless it already runs (``with LiteLLMProxy(...).start() as p`` must not
        launch a second process and leave the first one running)."""
        if self.process is None or self.process.poll() is not None:
            return self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation ------------------------------------------------------------------------
    def rss_bytes(self) -> int:
        """Resident memory of the proxy and its child processes, in bytes."""
        import psutil

        if self.process is None:
            return 0
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time (user + system) used so far by each process of the proxy, by pid: sampled
        before and after a load, it shows how the work was shared among the workers."""
        import psutil

        if self.process is None:
            return {}
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return {}
        out = {}
        for proc in procs:
            try:
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return out

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the worker processes, or the proxy itself when it
        runs one (multiprocessing's resource tracker is not a worker)."""
        import psutil

        if self.process is None:
            return []
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        workers = []
        for child in children:
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    workers.append(child.pid)
            except psutil.Error:
                pass
        return sorted(workers) if self.num_workers > 1 else [self.process.pid]

    def plugin_log(self, contains: str = "") -> list[tuple[int, str]]:
        """(process id, message) of the plugin's log lines that contain ``contains``; needs
        ``plugin_log_level``."""
        out = []
        for line in self.log_text().splitlines():
            m = _PID_LINE.search(line)
            if m and contains in m.group(2):
                out.append((int(m.group(1)), m.group(2)))
        return out

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


# -- the load client ------------------------------------------------------------------------------
@dataclass
class LoadResult:
    """Latencies and outcomes of one load run."""

    concurrency: int
    latencies_s: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1000) if self.latencies_s else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def summary(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "requests": self.requests, "ok": self.ok,
                "errors": len(self.errors), "rps": round(self.rps, 2),
                "p50_ms": round(self.p50_ms, 2), "p99_ms": round(self.p99_ms, 2),
                "wall_s": round(self.wall_s, 2)}


async def run_load(
    base_url: str,
    master_key: str,
    payloads: Sequence[Mapping[str, Any]] | Callable[[int], Mapping[str, Any]],
    concurrency: int,
    total: int,
    time_limit_s: float = 120.0,
    path: str = "/v1/chat/completions",
    request_timeout_s: float = 60.0,
    on_response: Callable[[int, Any], None] | None = None,
    ramp_s: float = 0.0,
) -> LoadResult:
    """Send ``total`` requests (``payloads[i]``, cycled) with ``concurrency`` in flight.

    Stops early when ``time_limit_s`` has passed (no new requests start after it). A non-200
    answer or a transport error is recorded in ``errors``; ``on_response(i, httpx.Response)``
    may inspect each answer.

    ``ramp_s`` spreads the start of the ``concurrency`` connections over that many seconds. For
    a proxy with several worker processes: they share one listening socket, and a worker that
    wakes up to a burst of connections accepts all of them (the event loop drains the accept
    queue), so ``concurrency`` connections opened at once mostly land on ONE worker and stay
    there (keep-alive). Spread out, each connection goes to whichever worker accepts it first.
    """
    import httpx

    if concurrency < 1 or total < 0:
        raise ConfigError(f"concurrency must be >= 1 and total >= 0, got {concurrency}, {total}")
    if not base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ConfigError(f"run_load only targets loopback addresses, got {base_url}")

    def payload(i: int) -> Mapping[str, Any]:
        if callable(payloads):
            return payloads(i)
        return payloads[i % len(payloads)]

    result = LoadResult(concurrency=concurrency)
    next_index = 0
    start = time.perf_counter()
    deadline = start + time_limit_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {master_key}"}

    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=request_timeout_s) as client:
        async def worker(k: int) -> None:
            nonlocal next_index
            if ramp_s > 0:
                await asyncio.sleep(ramp_s * k / concurrency)
            while True:
                if next_index >= total or time.perf_counter() > deadline:
                    return
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(path, json=payload(i))
                    status = resp.status_code
                    if status != 200:
                        result.errors.append(f"{status}: {resp.text[:300]}")
                    if on_response is not None:
                        on_response(i, resp)
                except httpx.HTTPError as exc:
                    status = 0
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                result.latencies_s.append(time.perf_counter() - t0)
                result.statuses.append(status)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    result.wall_s = time.perf_counter() - start
    return result


# -- config builders (tests and the benchmark) ----------------------------------------------------
HOOK_CALLBACK = "adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"
#: LiteLLM ``custom_auth`` answering 401 for missing and wrong keys on a proxy without a database.
MASTER_KEY_AUTH = "adaptive_router.integrations.litellm_plugin.auth.master_key_auth"
REPLAY_PROVIDER = {"provider": "replay",
                   "custom_handler": "adaptive_router.integrations.litellm_plugin.providers.replay_provider"}


def placeholder_replay_records(records: Sequence[Any]) -> list[Any]:
    """Records for ``replay/`` deployments of a score-only data set (llmrouter records no answer
    texts): each model answers with a placeholder naming it, billed at the recorded token counts,
    so the served model can be read off the answer and its recorded score looked up."""
    from adaptive_router.records import ModelSamples, Record

    return [Record(id=r.id, prompt=r.prompt, models={
        m: ModelSamples(responses=[f"(replayed answer of {m})"], token_num_prompt=s.token_num_prompt,
                        token_num_responses=list(s.token_num_responses[:1]))
        for m, s in r.models.items()}) for r in records]


def replay_deployment(group: str, model: str, input_per_token: float, output_per_token: float,
                      **litellm_params: Any) -> dict[str, Any]:
    """A ``model_list`` entry serving ``replay/<model>`` as model group ``group``, priced."""
    return {"model_name": group, "litellm_params": {"model": f"replay/{model}", **litellm_params},
            "model_info": {"input_cost_per_token": input_per_token, "output_cost_per_token": output_per_token}}


def write_proxy_config(
    path: str | Path,
    deployments: Sequence[Mapping[str, Any]],
    plugin: Mapping[str, Any] | None = None,
    alias: str = "adaptive-router",
    litellm_settings: Mapping[str, Any] | None = None,
    router_settings: Mapping[str, Any] | None = None,
    general_settings: Mapping[str, Any] | None = None,
) -> Path:
    """A proxy config.yaml: the deployments, the replay provider, and (with ``plugin``, the
    ``adaptive_router`` settings) the plugin's callback and public alias. ``general_settings``
    e.g. ``{"custom_auth": MASTER_KEY_AUTH}`` (401 for missing and wrong keys without a database)."""
    import yaml

    settings: dict[str, Any] = {"custom_provider_map": [REPLAY_PROVIDER], "telemetry": False}
    model_list = list(deployments)
    if plugin is not None:
        settings["callbacks"] = [HOOK_CALLBACK]
        settings["adaptive_router"] = dict(plugin)
        first = model_list[0]["litellm_params"]["model"]
        model_list = [{"model_name": alias, "litellm_params": {"model": first}}, *model_list]
    settings.update(litellm_settings or {})
    config: dict[str, Any] = {"model_list": model_list, "litellm_settings": settings}
    if router_settings:
        config["router_settings"] = dict(router_settings)
    if general_settings:
        config["general_settings"] = dict(general_settings)
    p = Path(path)
    p.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return p


def write_replay_records(path: str | Path, prompts: Sequence[str], models: Sequence[str],
                         answers: Sequence[str] | None = None, output_tokens: int = 40) -> Path:
    """Records answering every prompt for every model (one recorded sample per answer text)."""
    from adaptive_router.records import ModelSamples, Record, write_records

    answers = list(answers or ["Let us work through it step by step. We read the question, compute "
                               "each quantity in turn and check the result. The answer is 42."])
    records = [Record(id=f"rec-{i}", prompt=p, models={
        m: ModelSamples(responses=answers, scores={"correct": [1.0] * len(answers)},
                        token_num_prompt=max(1, len(p) // 4),
                        token_num_responses=[output_tokens] * len(answers))
        for m in models}) for i, p in enumerate(prompts)]
    write_records(records, path)
    return Path(path)
