"""Master-key authentication for a LiteLLM proxy without a database (issue 16, item 7).

LiteLLM 1.106.2 without a database answers a request with no ``Authorization`` header with a
500 ``text/plain`` (its error handler imports ``prisma``, which only its ``extra-proxy`` extra
installs), and a wrong key with a 400 "No connected db." (it looks every key that is not the
master key up in the database it does not have). Installing ``prisma`` fixes the first only.
This function, set as LiteLLM's ``custom_auth``, answers both with a 401 JSON error, accepts the
master key, and lets LiteLLM's public routes (``/health/liveliness``...) through::

    general_settings:
      custom_auth: adaptive_router.integrations.litellm_plugin.auth.master_key_auth

It replaces LiteLLM's key checks: with a database and virtual keys, remove it and let LiteLLM
authenticate (its own checks then answer 401 for wrong keys).

Per-key and per-team defaults without a database (issue 17): the plugin setting ``api_keys``
declares further keys, each with the identity and the ``metadata`` / ``team_metadata`` that
LiteLLM would otherwise read from its key and team tables::

    adaptive_router:
      api_keys:
        - key: os.environ/TEAM_RESEARCH_KEY          # inactive while the variable is unset
          key_alias: research-ci
          team_id: research
          team_metadata: {adaptive_router: {tradeoff: 0.3, explore_epsilon: 0.1}}

Such a key authenticates as an internal user of that team; the plugin's pre-call hook reads
``user_api_key_dict.metadata`` and ``.team_metadata`` exactly as it does for LiteLLM's own
virtual keys, so the same defaults work unchanged when a database replaces this function.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

log = logging.getLogger("adaptive_router.litellm")


def _unauthorized(message: str) -> Exception:
    from fastapi import HTTPException

    # LiteLLM turns an HTTPException from custom auth into a JSON error with this status,
    # before its database error handler (the one that imports prisma) is reached
    return HTTPException(status_code=401, detail=message)


async def master_key_auth(request: Any, api_key: str | None) -> Any:
    """LiteLLM ``custom_auth``: the master key is the proxy admin; anything else is a 401."""
    from litellm.proxy import proxy_server
    from litellm.proxy._types import LiteLLMRoutes, LitellmUserRoles, UserAPIKeyAuth

    path = getattr(getattr(request, "url", None), "path", "") or ""
    if path in LiteLLMRoutes.public_routes.value:
        return UserAPIKeyAuth(user_role=LitellmUserRoles.INTERNAL_USER_VIEW_ONLY)
    master = getattr(proxy_server, "master_key", None)
    if not isinstance(master, str) or not master:
        raise _unauthorized("the proxy has no master key (set LITELLM_MASTER_KEY); every request is refused")
    key = (api_key or "").strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    if not key:
        raise _unauthorized("no API key: send 'Authorization: Bearer <key>'")
    if not secrets.compare_digest(key.encode("utf-8", "replace"), master.encode("utf-8")):
        declared = _declared_key(key)
        if declared is None:
            raise _unauthorized("invalid API key")
        from litellm.proxy._types import hash_token

        # a declared key: its hash (never the key) identifies it in logs and spend tracking
        return UserAPIKeyAuth(api_key=hash_token(key), token=hash_token(key), key_alias=declared.key_alias,
                              team_id=declared.team_id, team_alias=declared.team_alias,
                              user_id=declared.user_id, metadata=dict(declared.metadata),
                              team_metadata=dict(declared.team_metadata),
                              user_role=LitellmUserRoles.INTERNAL_USER)
    from litellm.constants import LITELLM_PROXY_ADMIN_NAME, LITELLM_PROXY_MASTER_KEY_ALIAS

    # the identity LiteLLM itself gives the master key, under its alias (never the key itself)
    return UserAPIKeyAuth(api_key=LITELLM_PROXY_MASTER_KEY_ALIAS, user_role=LitellmUserRoles.PROXY_ADMIN,
                          user_id=getattr(proxy_server, "litellm_proxy_admin_name", LITELLM_PROXY_ADMIN_NAME))


def _declared_key(key: str) -> Any:
    """The ``api_keys`` entry of the plugin settings whose key is ``key``, or None.

    Read from ``litellm.adaptive_router`` at every call (a handful of entries), so that a key
    whose environment variable is set later, or a reloaded config, counts at once. An entry that
    does not validate is logged and ignored: authentication must not fail open or crash."""
    import litellm
    from adaptive_router.integrations.plugin_settings import ApiKeySettings

    raw = getattr(litellm, "adaptive_router", None)
    entries = raw.get("api_keys") if isinstance(raw, dict) else None
    found = None
    for i, entry in enumerate(entries or ()):
        try:
            declared = ApiKeySettings.model_validate(entry)
        except Exception as exc:
            log.error("adaptive_router: api_keys[%d] is invalid and ignored: %s", i, exc)
            continue
        value = declared.resolved_key()
        # compare every entry (constant work per request, whichever key matches)
        if value and secrets.compare_digest(key.encode("utf-8", "replace"), value.encode("utf-8")):
            found = found or declared
    return found


__all__ = ["master_key_auth"]
