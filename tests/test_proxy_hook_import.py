"""Importing the proxy hook module starts nothing: LiteLLM imports callbacks in every worker
process (and tools import the module to read it), so a thread started at import would outlive
the import's purpose and, in a pre-forking server, be copied half-alive into each worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_the_hook_starts_no_thread() -> None:
    script = textwrap.dedent("""
        import threading
        import litellm  # its own import may start threads: count ours only
        from adaptive_router.integrations.litellm_plugin import runtime  # the heavy imports
        before = {t.ident for t in threading.enumerate()}
        from adaptive_router.integrations.litellm_plugin import proxy_hook
        started = [t.name for t in threading.enumerate() if t.ident not in before]
        assert proxy_hook.proxy_handler.runtimes.current is None, "the runtime was built at import"
        print(started)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={"HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


async def test_warmup_is_a_task_on_the_running_loop_only() -> None:
    """Inside an event loop (LiteLLM's startup event) the warm-up is scheduled as a task; it
    gives up quietly when no proxy appears, and no thread of ours is started."""
    import threading

    from adaptive_router.integrations.litellm_plugin.proxy_hook import AdaptiveRouterProxyHook

    before = {t.ident for t in threading.enumerate()}
    hook = AdaptiveRouterProxyHook()
    task = hook.runtimes.schedule_warmup(wait_s=0.2)
    assert task is not None and hook.runtimes.schedule_warmup() is task
    await task
    assert hook.runtimes.current is None
    assert not [t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("adaptive-router")]
