"""The CLI through a control plane's HTTP API: the standard library only (urllib, json),
so `computectl --server URL nodes list` starts without pydantic, SQLAlchemy or FastAPI.

Every answer is checked against its shape (compute.client.shapes) before anything is printed;
a refusal becomes its ComputeError (compute.client.errors). A token goes to the server it was
given for and nowhere else: redirects are not followed. Features' calls: *_ops mixins."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from compute.client import shapes
from compute.client.acceptance_ops import AcceptanceRemote
from compute.client.capacity_ops import CapacityRemote
from compute.client.contexts import Target
from compute.client.energy_ops import EnergyRemote
from compute.client.errors import (
    BadAnswer,
    Unreachable,
    error_class,
    problem_error,
    unreachable_reason,
)
from compute.client.floors_ops import FloorsRemote
from compute.client.job_impact_ops import JobImpactRemote
from compute.client.lemon_ops import LemonRemote
from compute.client.power_ops import PowerRemote
from compute.client.protocol import View
from compute.errors import ComputeError, InvalidInput
from compute.tenants.outcome import batch_error

API = "/api/v1"
# Ten thousand nodes listed are a few MB; more than this is not an answer of this API.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_PROBLEM_BYTES = 64 * 1024
TIMEOUT_SECONDS = 60.0
USER_AGENT = "computectl/0.1.0"
# The server's bounds of one batch of tenant specs (compute.services.tenants_batch.MAX_SPECS,
# and under compute.validation.MAX_BODY_BYTES with room for the envelope); more are sent in
# several requests.
MAX_BATCH_SPECS = 10_000
BATCH_BYTES = 3 * 1024 * 1024
# Creating a thousand tenants takes minutes; the server answers once all are done.
BATCH_TIMEOUT_SECONDS = 1800.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx itself is raised as an HTTPError, below


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


class RemoteClient(
    PowerRemote,
    CapacityRemote,
    EnergyRemote,
    FloorsRemote,
    JobImpactRemote,
    AcceptanceRemote,
    LemonRemote,
):
    def __init__(
        self,
        target: Target,
        timeout: float = TIMEOUT_SECONDS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._opener = urllib.request.build_opener(_NoRedirect())

    def close(self) -> None:
        pass

    # -- HTTP -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str | int | bool]] = (),
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer of ``method API+path``; a refusal raised as its error.
        ``timeout``: how long to wait for the answer, if not the client's."""
        what = f"{method} {API}{path}"
        pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query]
        url = self.target.server + API + path + (f"?{urlencode(pairs)}" if pairs else "")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        where = self.target.server
        wait = self.timeout if timeout is None else timeout
        try:
            with self._opener.open(request, timeout=wait) as answer:
                raw = answer.read(self.max_answer_bytes + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    moved = exc.headers.get("Location", "elsewhere") if exc.headers else "?"
                    raise Unreachable(
                        f"{where} redirects {what} to {moved[:200]!r}; give that server "
                        "(computectl follows no redirect: the token is for this one)"
                    ) from None
                try:
                    problem = exc.read(MAX_PROBLEM_BYTES)
                except (OSError, http.client.HTTPException):
                    problem = b""
            raise problem_error(exc.code, problem, what) from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"cannot reach {where}: {unreachable_reason(exc.reason)}") from None
        except TimeoutError:
            raise Unreachable(f"{where} did not answer {what} within {wait:g} s") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise Unreachable(f"{where} broke off {what}: {unreachable_reason(exc)}") from None
        if len(raw) > self.max_answer_bytes:
            raise BadAnswer(
                f"{where}'s answer to {what} is larger than {self.max_answer_bytes} bytes"
            )
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadAnswer(f"{where}'s answer to {what} is not JSON") from None

    def _get(self, path: str, shape: Any, query: Sequence[tuple[str, Any]] = ()) -> Any:
        return shapes.check(self.call("GET", path, query), shape, "answer")

    def _post(self, path: str, shape: Any, body: Any = None) -> Any:
        return shapes.check(self.call("POST", path, body=body), shape, "answer")

    # -- nodes ----------------------------------------------------------------------------

    def nodes(self, pool: str | None, state: str | None) -> list[View]:
        query = [(k, v) for k, v in (("pool", pool), ("state", state)) if v is not None]
        found: list[View] = self._get("/nodes", {"nodes": [shapes.NODE]}, query)["nodes"]
        return found

    def node(self, name: str) -> View:
        found: View = self._get(f"/nodes/{_seg(name)}", shapes.NODE_DETAIL)
        return found

    def rma_report(self, name: str) -> View:
        found: View = self._get(f"/nodes/{_seg(name)}/rma-report", shapes.RMA)
        return found

    def drain(self, targets: Sequence[str], reason: str, now: bool) -> View:
        body = {"nodes": list(targets), "reason": reason, "now": now}
        done: View = self._post("/nodes/drain", {**shapes.BATCH, "nodes": [shapes.DRAINED]}, body)
        return done

    def resume(self, targets: Sequence[str], force: bool, skip_burn_in: bool) -> View:
        body = {"nodes": list(targets), "force": force, "skip_burn_in": skip_burn_in}
        done: View = self._post("/nodes/resume", shapes.BATCH, body)
        return done

    def retire(self, name: str) -> View:
        done: View = self._post(f"/nodes/{_seg(name)}/retire", shapes.NODE)
        return done

    # -- the fleet ------------------------------------------------------------------------

    def events(self, node: str | None, kinds: Sequence[str], limit: int) -> list[View]:
        query: list[tuple[str, Any]] = [("limit", limit)]
        query += [("node", node)] if node is not None else []
        query += [("kind", k) for k in kinds]
        found: list[View] = self._get("/events", {"events": [shapes.EVENT]}, query)["events"]
        return found

    def capacity(self) -> View:
        found: View = self._get("/capacity", shapes.CAPACITY)
        return found

    def sweep(self) -> View:
        report: View = self._post("/sweep", shapes.SWEEP)
        return report

    # -- pools and the brake --------------------------------------------------------------

    def pools(self) -> list[View]:
        found: list[View] = self._get("/pools", {"pools": [shapes.POOL]})["pools"]
        return found

    def set_pool_mode(self, name: str, mode: str, check: str | None) -> View:
        verb = {"observe": "observe", "enforce": "enable"}[mode]
        body = {"check": check} if check is not None else None
        pool: View = self._post(f"/pools/{_seg(name)}/{verb}", shapes.POOL, body)
        return pool

    def pool_report(self, name: str, since: str) -> View:
        found: View = self._get(
            f"/pools/{_seg(name)}/report", shapes.POOL_REPORT, [("since", since)]
        )
        return found

    def incidents(self, state: str | None, limit: int) -> list[View]:
        query: list[tuple[str, Any]] = [("limit", limit)]
        query += [("state", state)] if state is not None else []
        answer = self._get("/incidents", {"incidents": [shapes.INCIDENT]}, query)
        found: list[View] = answer["incidents"]
        return found

    def incident(self, id_: int) -> View:
        found: View = self._get(f"/incidents/{_seg(id_)}", shapes.INCIDENT)
        return found

    def release_incident(self, id_: int) -> View:
        found: View = self._post(f"/incidents/{_seg(id_)}/release", shapes.INCIDENT)
        return found

    # -- tenants --------------------------------------------------------------------------

    def tenants(self) -> list[View]:
        found: list[View] = self._get("/tenants", {"tenants": [shapes.TENANT]})["tenants"]
        return found

    def tenant(self, name: str) -> View:
        found: View = self._get(f"/tenants/{_seg(name)}", shapes.TENANT_DETAIL)
        return found

    def plan_tenant(self, spec_file: Path) -> View:
        plan: View = self._post("/tenants/plan", shapes.PLAN, _spec(spec_file))
        return plan

    def apply_tenant(self, spec_file: Path) -> View:
        spec = _spec(spec_file)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{spec_file}: the spec names no tenant (name = ...)")
        answer = self.call("PUT", f"/tenants/{_seg(name)}", body=spec)
        plan: View = shapes.check(answer, shapes.PLAN, "answer")
        return plan

    def plan_tenants(self, spec_files: Sequence[Path]) -> View:
        return self._tenant_batch(spec_files, "plan", "planned")

    def apply_tenants(self, spec_files: Sequence[Path]) -> View:
        return self._tenant_batch(spec_files, "apply", "applied")

    def _tenant_batch(self, spec_files: Sequence[Path], route: str, verb: str) -> View:
        """Every spec in one request (``POST /tenants/batch/plan|apply``), or a few when
        they would not fit one body; each file read and checked first, so a bad file calls
        nothing. The server checks each spec on its own: a refused one holds back no other.
        With none done the refusal is raised, as locally."""
        specs = [_spec(f) for f in spec_files]
        names = [_name(s, f) for s, f in zip(specs, spec_files, strict=True)]
        twice = sorted(n for n, c in Counter(names).items() if c > 1)
        if twice:
            raise InvalidInput(f"tenant(s) named by two specs: {', '.join(twice)}")
        done: list[View] = []
        refused: list[View] = []
        errors: dict[str, ComputeError] = {}
        parts = _parts(specs)
        for i, part in enumerate(parts):
            start = sum(len(p) for p in parts[:i])
            try:
                answer = shapes.check(
                    self.call(
                        "POST",
                        f"/tenants/batch/{route}",
                        body={"specs": part},
                        timeout=max(self.timeout, BATCH_TIMEOUT_SECONDS),
                    ),
                    shapes.TENANT_BATCH,
                    "answer",
                )
            except Unreachable as exc:
                # The server stopped answering: what it did of this part is not known.
                if not done and not refused:
                    raise
                errors.update((n, exc) for n in names[start:])
                break
            except ComputeError as exc:
                if len(parts) == 1:
                    raise
                errors.update((n, exc) for n in names[start : start + len(part)])
                continue
            done += answer["tenants"]
            refused += answer["refused"]
        refused += [{"tenant": t, "code": e.code, "detail": str(e)} for t, e in errors.items()]
        error = batch_error(0, {r["tenant"]: _refusal(r) for r in refused}, verb)
        if error is not None and not done:
            raise error
        return {"tenants": done, "refused": refused}

    def suspend_tenant(self, name: str) -> View:
        plan: View = self._post(f"/tenants/{_seg(name)}/suspend", shapes.PLAN)
        return plan

    def resume_tenant(self, name: str) -> View:
        plan: View = self._post(f"/tenants/{_seg(name)}/resume", shapes.PLAN)
        return plan

    def delete_tenant(self, name: str, force: bool, grace_seconds: int, purge_data: bool) -> View:
        query = [("force", force), ("grace_seconds", grace_seconds), ("purge_data", purge_data)]
        answer = self.call("DELETE", f"/tenants/{_seg(name)}", query)
        plan: View = shapes.check(answer, shapes.PLAN, "answer")
        return plan

    def tenant_usage(self, name: str, days: int) -> View:
        found: View = self._get(f"/tenants/{_seg(name)}/usage", shapes.USAGE, [("days", days)])
        return found

    def kubeconfig(self, name: str, hours: float) -> str:
        # POST: it mints a credential (a token bound to the tenant's namespace).
        path = f"/tenants/{_seg(name)}/kubeconfig"
        answer = self._post(path, {"kubeconfig": shapes.STR}, {"hours": hours})
        text: str = answer["kubeconfig"]
        return text

    # -- access ---------------------------------------------------------------------------

    def tokens(self) -> list[View]:
        found: list[View] = self._get("/tokens", {"tokens": [shapes.TOKEN]})["tokens"]
        return found

    def create_token(
        self,
        role: str,
        tenant: str | None,
        node: str | None,
        expires: str | None,
        name: str | None,
    ) -> View:
        fields = {"role": role, "tenant": tenant, "node": node, "expires": expires, "name": name}
        body = {k: v for k, v in fields.items() if v is not None}
        created: View = self._post("/tokens", shapes.CREATED, body)
        return created

    def revoke_token(self, id_: int) -> View:
        answer = self.call("DELETE", f"/tokens/{_seg(id_)}")
        revoked: View = shapes.check(answer, shapes.TOKEN, "answer")
        return revoked

    def audit(
        self, actor: str | None, since: str | None, tenant: str | None, limit: int
    ) -> list[View]:
        given = (("actor", actor), ("since", since), ("tenant", tenant))
        query: list[tuple[str, Any]] = [(k, v) for k, v in given if v is not None]
        query.append(("limit", limit))
        found: list[View] = self._get("/audit", {"entries": [shapes.AUDIT]}, query)["entries"]
        return found


def _spec(path: Path) -> dict[str, Any]:
    """A tenant spec file as the JSON body the API takes (its [tenant] table)."""
    from compute.validation import read_toml  # the same checks and lines as locally
    from health.inputs import InputError

    try:
        data = read_toml(path, "tenant spec")
    except InputError as exc:
        raise InvalidInput(str(exc)) from None
    spec = data.get("tenant", data)
    if not isinstance(spec, dict):
        raise InvalidInput(f"tenant spec {path}: [tenant] is not a table")
    return spec


def _name(spec: dict[str, Any], path: Path) -> str:
    name = spec.get("name")
    return name if isinstance(name, str) and name else str(path)


def _parts(specs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The specs in request bodies under the server's limits (count and bytes), in order."""
    envelope = len(json.dumps({"specs": []}))
    parts: list[list[dict[str, Any]]] = [[]]
    size = envelope
    for spec in specs:
        n = len(json.dumps(spec)) + 2  # and ", " before the next
        if parts[-1] and (len(parts[-1]) >= MAX_BATCH_SPECS or size + n > BATCH_BYTES):
            parts.append([])
            size = envelope
        parts[-1].append(spec)
        size += n
    return parts


def _refusal(view: View) -> ComputeError:
    """A refusal of the answer as the error it stands for (its code picks the class)."""
    cls = error_class(str(view["code"])) or ComputeError
    return cls(str(view["detail"]))
