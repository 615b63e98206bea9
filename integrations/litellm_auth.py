"""Master-key authentication for a LiteLLM proxy without a database (issue 16, item 7).

LiteLLM 1.106.2 without a database answers a request with no ``Authorization`` header with a
500 ``text/plain`` (its error handler imports ``prisma``, which only its ``extra-proxy`` extra
installs), and a wrong key with a 400 "No connected db." (it looks every key that is not the
master key up in the database it does not have). Installing ``prisma`` fixes the first only.
This function, set as LiteLLM's ``custom_auth``, answers both with a 401 JSON error, accepts the
master key, and lets LiteLLM's public routes (``/health/liveliness``...) through::

    general_settings:
      custom_auth: adaptive_router.integrations.litellm_auth.master_key_auth

It replaces LiteLLM's key checks: with a database and virtual keys, remove it and let LiteLLM
authenticate (its own checks then answer 401 for wrong keys).
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
        raise _unauthorized("invalid API key")
    from litellm.constants import LITELLM_PROXY_ADMIN_NAME, LITELLM_PROXY_MASTER_KEY_ALIAS

    # the identity LiteLLM itself gives the master key, under its alias (never the key itself)
    return UserAPIKeyAuth(api_key=LITELLM_PROXY_MASTER_KEY_ALIAS, user_role=LitellmUserRoles.PROXY_ADMIN,
                          user_id=getattr(proxy_server, "litellm_proxy_admin_name", LITELLM_PROXY_ADMIN_NAME))


__all__ = ["master_key_auth"]
