"""Request-scoped access to the runtime and to who is asking (the front door,
compute/api/auth.py, has already decided that they may)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from compute.api.auth import PRINCIPAL_KEY
from compute.auth.policy import Unauthenticated
from compute.auth.principal import Actor, Principal
from compute.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def wall_now(request: Request) -> datetime:
    """The wall clock: tokens and sessions live in real time, whatever the simulation's
    clock says."""
    now: datetime = request.app.state.door.wall()
    return now


def principal(request: Request) -> Principal:
    """The principal the front door let in. A route reached without one is a public route
    asking for it: a bug in the table, refused rather than served as nobody."""
    found = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(found, Principal):
        raise Unauthenticated("this needs a credential: 'Authorization: Bearer <token>'")
    return found


def actor(request: Request) -> Actor:
    """Who a change is recorded as: "token:12 (alice-laptop)", with its source."""
    return Actor(principal(request))
