"""The proxy plugin's runtime: built once per process, reloaded when its router folder changes.

Each LiteLLM worker process imports the plugin and holds one :class:`RuntimeHolder`: the runtime
(settings, fleet, router, selector) is built on first use — or as soon as the proxy has loaded
its config, by :meth:`RuntimeHolder.schedule_warmup`, so the first request does not pay for
loading an encoder and a misconfiguration shows in the log at startup. Importing this module
starts nothing: the warm-up is a task on the proxy's event loop, and the reload watcher a thread
started only once a runtime exists.

Hot reload: every ``reload_check_s`` the router folder's file names, sizes and times are
compared; a change that has settled is hashed, and new content is loaded and checked off the
event loop, then swapped in between requests. The previous generation stays reachable for the
requests it decided (their post-call accounting uses the same fleet and selector). A folder that
cannot be loaded keeps the current router, and the reason is logged once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adaptive_router.integrations.litellm_plugin.metrics import mount_metrics_route
from adaptive_router.integrations.litellm_plugin.proxy_errors import PluginMisconfigured
from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime, litellm_cost
from adaptive_router.integrations.plugin_settings import PluginSettings

from adaptive_router.errors import AdaptiveRouterError
from adaptive_router.verifiers.base import Verifier

log = logging.getLogger("adaptive_router.litellm")


def _judge_class() -> type:
    from adaptive_router.verifiers.judge import JudgeVerifier

    class RouterJudge(JudgeVerifier):
        """``judge:<group>`` asked through the proxy's own router (its deployments, keys and
        prices), not through ``litellm.acompletion`` (which knows no proxy model group)."""

        def __init__(self, model: str, router: Any) -> None:
            super().__init__(model)
            self._router = router

        async def ascore(self, evidence: Any) -> float:
            reply = await self._router.acompletion(messages=self._messages(evidence), n=self.votes,
                                                   **self._kwargs())
            share = self._share(reply)
            # the router priced the call from the group's model_info (the price map may not
            # know the model): that is what the judge cost
            cost = litellm_cost(reply)
            if cost is not None:
                self.last_cost_usd = cost
            return float(min(1.0, max(0.0, share)))

    return RouterJudge


class ProxyRuntime(AdaptiveRuntime):
    """The runtime with the proxy's router at hand, for a ``judge:<model group>`` verifier."""

    def __init__(self, settings: PluginSettings, model_list: Any, llm_router: Callable[[], Any]) -> None:
        super().__init__(settings, model_list)
        self._groups = {d.get("model_name") for d in (model_list or []) if isinstance(d, Mapping)}
        self._llm_router = llm_router

    def judge_verifier(self, model: str) -> Verifier:
        if model in self._groups:
            return _judge_class()(model, self._llm_router())
        return super().judge_verifier(model)


def running_proxy() -> Any:
    """LiteLLM's proxy server module once it is imported (None outside a proxy)."""
    return sys.modules.get("litellm.proxy.proxy_server")


def proxy_model_list() -> list[dict[str, Any]] | None:
    """The running proxy's deployments (its router's ``model_list``), if a proxy runs here."""
    server = running_proxy()
    router = getattr(server, "llm_router", None) if server is not None else None
    return list(getattr(router, "model_list", None) or []) or None


class RuntimeHolder:
    """One process's runtime, its generations across reloads, and the threads that keep it."""

    def __init__(self, settings: Callable[[], PluginSettings], model_list: list[dict[str, Any]] | None,
                 llm_router: Callable[[], Any]) -> None:
        self._settings = settings
        self._model_list = model_list  # default: the running proxy's router.model_list
        self._llm_router = llm_router
        self.current: AdaptiveRuntime | None = None
        self.generation = 0
        self._runtimes: dict[int, AdaptiveRuntime] = {}
        self._lock = threading.Lock()
        self._router_sig: Any = None
        self._router_hash: str | None = None
        self._bad_hash: str | None = None
        self._reloader: threading.Thread | None = None
        self._warmup: asyncio.Task[None] | None = None
        self._metrics_mounted = False

    # -- building -----------------------------------------------------------------------------
    async def get(self) -> AdaptiveRuntime:
        """The runtime, built on first use; any failure to build it is the server's (HTTP 500
        "misconfigured", the reason in the proxy's log), never the client's fault."""
        try:
            if self.current is None:
                await asyncio.to_thread(self.build)
            self.ensure_metrics_route()
            return self.current  # type: ignore[return-value]
        except PluginMisconfigured:
            raise
        except Exception as exc:
            log.error("adaptive_router: the plugin cannot start: %s: %s", type(exc).__name__, exc)
            detail = str(exc) if isinstance(exc, AdaptiveRouterError) else f"{type(exc).__name__}: {exc}"
            raise PluginMisconfigured(f"the plugin is misconfigured: {detail}") from exc

    async def of_generation(self, generation: int | None) -> AdaptiveRuntime:
        """The runtime that decided a request (after a reload, the previous one), else the
        current one."""
        runtime = self._runtimes.get(generation) if generation is not None else None
        return runtime if runtime is not None else await self.get()

    def build(self) -> AdaptiveRuntime:
        """Build the runtime once (a lock: the warm-up and requests may race)."""
        with self._lock:
            if self.current is None:
                settings = self._settings()
                folder = router_folder(settings)
                sig = folder_signature(folder) if folder is not None else None
                runtime = self._new_runtime(settings)
                self._install(runtime, sig, folder_hash(folder) if folder is not None else None)
                log.info("adaptive_router: routing %s over %s with router %s", settings.model_name,
                         runtime.fleet.candidate_keys, runtime.router.name)
                if folder is not None and settings.reload_check_s > 0:
                    self._start_reloader(settings, folder)
        return self.current  # type: ignore[return-value]

    def _new_runtime(self, settings: PluginSettings) -> AdaptiveRuntime:
        model_list = self._model_list if self._model_list is not None else proxy_model_list()
        return ProxyRuntime(settings, model_list, self._llm_router)

    def _install(self, runtime: AdaptiveRuntime, sig: Any, digest: str | None) -> None:
        """Serve ``runtime`` from now on; the generation before the previous one is closed (its
        micro-batching thread stopped)."""
        self.generation += 1
        old = [g for g in self._runtimes if g < self.generation - 1]
        self._runtimes[self.generation] = runtime
        self.current = runtime
        self._router_sig, self._router_hash = sig, digest
        for g in old:
            retired = self._runtimes.pop(g)
            close = getattr(retired.router, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # a retired router: nothing depends on it any more
                    pass

    # -- warm-up at proxy start -----------------------------------------------------------------
    def schedule_warmup(self, wait_s: float = 300.0) -> asyncio.Task[None] | None:
        """Build the runtime as soon as the proxy has loaded its config, as a task on the running
        event loop (LiteLLM imports callbacks inside its startup event). Without a running loop —
        a plain import in a script or a test — nothing is scheduled: the first request builds."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if self._warmup is None:
            self._warmup = loop.create_task(self._warm(wait_s), name="adaptive-router-warmup")
        return self._warmup

    async def _warm(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.current is None:
            server = running_proxy()
            litellm = sys.modules.get("litellm")
            if (server is not None and getattr(server, "llm_router", None) is not None
                    and getattr(litellm, "adaptive_router", None) is not None):
                try:
                    await asyncio.to_thread(self.build)
                except Exception as exc:
                    log.error("adaptive_router: the plugin cannot start: %s", exc)
                self.ensure_metrics_route()
                return
            await asyncio.sleep(0.5)

    def ensure_metrics_route(self) -> None:
        """Mount ``/metrics`` once per process, unless LiteLLM's prometheus callback serves it."""
        if self._metrics_mounted or running_proxy() is None:
            return
        self._metrics_mounted = True
        try:
            mount_metrics_route()
        except Exception:
            log.exception("adaptive_router: could not mount /metrics")

    # -- hot reload ----------------------------------------------------------------------------
    def _start_reloader(self, settings: PluginSettings, folder: Path) -> None:
        if self._reloader is not None:
            return

        def watch() -> None:
            interval = float(settings.reload_check_s)
            while True:
                time.sleep(interval)
                try:
                    self.reload_if_changed(settings, folder, settle_s=min(0.5, interval))
                except Exception:  # the watcher must outlive any surprise
                    log.exception("adaptive_router: router reload check failed")

        self._reloader = threading.Thread(target=watch, name="adaptive-router-reload", daemon=True)
        self._reloader.start()

    def reload_if_changed(self, settings: PluginSettings, folder: Path, settle_s: float = 0.5) -> bool:
        """Load the router folder again if its content changed; True when a new router serves."""
        sig = folder_signature(folder)
        if sig is None or sig == self._router_sig:
            return False  # missing (being replaced) or unchanged
        time.sleep(settle_s)
        if folder_signature(folder) != sig:
            return False  # still being written: look again at the next tick
        digest = folder_hash(folder)
        if digest is None or digest == self._bad_hash:
            return False
        if digest == self._router_hash:
            self._router_sig = sig  # touched, same content
            return False
        try:
            runtime = self._new_runtime(settings)
        except Exception as exc:
            self._bad_hash = digest
            log.error("adaptive_router: the router folder %s changed but cannot be loaded; keeping "
                      "the current router (%s): %s: %s", folder, self.current.router.name if
                      self.current else "none", type(exc).__name__, exc)
            return False
        with self._lock:
            self._install(runtime, sig, digest)
        log.warning("adaptive_router: reloaded the router from %s (content %s, router %s)",
                    folder, digest[:12], runtime.router.name)
        return True


def router_folder(settings: PluginSettings) -> Path | None:
    """The router checkpoint folder the settings name (None for a baseline name)."""
    spec = Path(settings.router_spec())
    return spec if spec.is_dir() else None


def folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...] | None:
    """Every file of ``folder`` as (relative path, size, modification time): a cheap look that
    changes whenever a file is written; None when the folder does not exist (being replaced)."""
    root = Path(folder)
    if not root.is_dir():
        return None
    out = []
    try:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                st = p.stat()
                out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    except OSError:  # a file vanished while listing: the folder is being replaced
        return None
    return tuple(out)


def folder_hash(folder: Path) -> str | None:
    """A BLAKE2b digest of the folder's file names and contents (what decides a reload: a copy
    of the same checkpoint, with new times, is not a new router)."""
    root = Path(folder)
    if not root.is_dir():
        return None
    h = hashlib.blake2b(digest_size=16)
    try:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(root)).encode() + b"\0")
                with p.open("rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(block)
                h.update(b"\0")
    except OSError:
        return None
    return h.hexdigest()
