"""Work-order pages: ``/orders`` (supervisors, admins, operators: list, 督办, callbacks, walk-in/letter entry),
``/inbox`` (handlers), and their shared script and style. Without a session they redirect to /login."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent_console.deps import MSG_FORBIDDEN, current_user, optional_user
from agent_console.models import User
from agent_console.pages import ROLE_NAMES

router = APIRouter(tags=["pages"], include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@cache
def _static(name: str) -> str:
    return resources.files("agent_console").joinpath("static", name).read_text(encoding="utf-8")


def _render(name: str, user: User) -> HTMLResponse:
    body = (_static(name)
            .replace("{{display_name}}", html.escape(user.display_name or user.username))
            .replace("{{username}}", html.escape(user.username))
            .replace("{{role}}", html.escape(ROLE_NAMES.get(user.role, user.role)))
            .replace("{{role_code}}", html.escape(user.role)))
    return HTMLResponse(body, headers=NO_STORE)


def _page(name: str, user: User | None, roles: tuple[str, ...]) -> Response:
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if user.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, MSG_FORBIDDEN)
    return _render(name, user)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(user: User | None = Depends(optional_user)) -> Response:
    return _page("orders.html", user, ("operator", "supervisor", "admin"))


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(user: User | None = Depends(optional_user)) -> Response:
    return _page("inbox.html", user, ("handler", "supervisor", "admin"))


@router.get("/static/work_orders.js")
def script(user: User = Depends(current_user)) -> Response:
    return Response(_static("work_orders.js"), media_type="text/javascript; charset=utf-8", headers=NO_STORE)


@router.get("/static/work_orders.css")
def style(user: User = Depends(current_user)) -> Response:
    return Response(_static("work_orders.css"), media_type="text/css; charset=utf-8", headers=NO_STORE)
