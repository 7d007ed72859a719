"""Web pages: ``/login`` (public) and ``/`` (the console; redirects to /login without a session)."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources

from fastapi import APIRouter, Depends, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent_console.deps import optional_user
from agent_console.models import User
from agent_console.ops.routing import PHONE_FAILURES

router = APIRouter(tags=["pages"], include_in_schema=False)

ROLE_NAMES = {"operator": "接线员", "supervisor": "督办", "admin": "管理员", "handler": "承办人"}


@cache
def _page(name: str) -> str:
    return resources.files("agent_console").joinpath("static", name).read_text(encoding="utf-8")


@router.get("/login", response_class=HTMLResponse)
def login_page() -> HTMLResponse:
    return HTMLResponse(_page("login.html"))


@router.get("/", response_class=HTMLResponse)
def index_page(user: User | None = Depends(optional_user)) -> Response:
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if user.role == "handler":  # handlers take no calls: their work is the inbox of dispatched orders
        return RedirectResponse("/inbox", status.HTTP_303_SEE_OTHER)
    body = (_page("index.html")
            .replace("{{display_name}}", html.escape(user.display_name or user.username))
            .replace("{{username}}", html.escape(user.username))
            .replace("{{role}}", html.escape(ROLE_NAMES.get(user.role, user.role)))
            .replace("{{role_code}}", html.escape(user.role))
            .replace('"{{phone_failures}}"', json.dumps(sorted(PHONE_FAILURES))))
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/kb", response_class=HTMLResponse)
def kb_page(user: User | None = Depends(optional_user)) -> Response:
    """The knowledge-base admin page: everyone logged in may look and try; only admins change (API-enforced)."""
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    return HTMLResponse(_page("kb.html"), headers={"Cache-Control": "no-store"})
