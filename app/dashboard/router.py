"""`/dashboard`: the operator's web UI. Thin handlers over the admin service (the admin API's own), the
video creation service (the API's own) and `app.dashboard.service`; pages are Jinja2 templates.

Pages without a session redirect to the sign-in form; data endpoints answer 401; every state-changing
request passes `csrf_session` (same origin and the session's CSRF token). Nothing here commits: the
request's session is committed by `get_session` (video creation hands it back itself).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.admin import service as admin
from app.admin.schemas import KeyCreate, KeyOut, KeyUpdate, TaskOut
from app.dashboard import auth, service
from app.dashboard.auth import CsrfSession, DataSession, PageSession
from app.dashboard.views import STATIC_FILES, STATIC_TYPES, render, secure
from app.deps import GatewayDep, SessionDep
from app.errors import GatewayError, NotFound, RateLimited
from app.keys import service as keys
from app.providers.vendors import BUILTIN
from app.videos import creation, drafts, reads
from app.videos.parsing import ParsedBody, parse_body

router = APIRouter(prefix=auth.PREFIX, tags=["dashboard"], include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("queued", "in_progress", "completed", "failed")


def _ctx(request: Request, sess: auth.DashboardSession | None, active: str, **extra: Any) -> dict[str, Any]:
    return {"request": request, "csrf": sess.csrf if sess else "", "active": active, **extra}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("")
async def home(_: PageSession) -> RedirectResponse:
    return _see_other(f"{auth.PREFIX}/videos")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        raise NotFound("No such dashboard file.", code="unknown_url")
    resp = FileResponse(path, media_type=STATIC_TYPES[path.suffix])
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# -- sign-in -------------------------------------------------------------------------------------------


def _next(value: str | None) -> str:
    # only a dashboard path of this server: never an open redirect
    if value and value.startswith(auth.PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return f"{auth.PREFIX}/videos"


@router.get("/sign-in")
async def sign_in_form(request: Request, gw: GatewayDep, next: str | None = None) -> Response:
    if not auth.enabled(gw.settings):
        return render(request, "disabled.html", _ctx(request, None, ""), status_code=403)
    if auth.read_cookie(gw, request.cookies.get(auth.COOKIE)) is not None:
        return _see_other(_next(next))  # signed in already
    return render(request, "sign_in.html", _ctx(request, None, "", next=_next(next), error=None))


@router.post("/sign-in")
async def sign_in(request: Request, gw: GatewayDep) -> Response:
    if not auth.enabled(gw.settings):
        return render(request, "disabled.html", _ctx(request, None, ""), status_code=403)
    form = await request.form()
    target = _next(str(form.get("next") or ""))
    if not auth.same_origin(request, gw.settings):
        error, status = "This sign-in did not come from the dashboard's own page.", 403
    else:
        try:
            await auth.limit_sign_in(gw, request)
        except RateLimited as exc:
            ctx = _ctx(request, None, "", next=target, error=exc.message)
            resp = render(request, "sign_in.html", ctx, status_code=429)
            resp.headers.update(exc.headers)
            return resp
        if auth.token_matches(gw, str(form.get("token") or "")):
            resp = _see_other(target)
            resp.set_cookie(
                auth.COOKIE,
                auth.new_cookie(gw),
                max_age=auth.SESSION_TTL_S,
                path=auth.PREFIX,
                httponly=True,
                samesite="strict",
                secure=auth.is_https(request, gw.settings),
            )
            return resp
        # 200, not 401: the form is shown again with its error (a 4xx document is a console error in browsers)
        error, status = "That is not the admin token (VIDGATE_ADMIN_TOKEN). API keys cannot sign in.", 200
    return render(request, "sign_in.html", _ctx(request, None, "", next=target, error=error), status_code=status)


@router.post("/sign-out")
async def sign_out(request: Request, gw: GatewayDep, _: CsrfSession) -> RedirectResponse:
    resp = _see_other(f"{auth.PREFIX}/sign-in")
    resp.delete_cookie(
        auth.COOKIE, path=auth.PREFIX, httponly=True, samesite="strict", secure=auth.is_https(request, gw.settings)
    )
    return resp


# -- videos --------------------------------------------------------------------------------------------


@router.get("/videos")
async def videos(
    request: Request,
    gw: GatewayDep,
    session: SessionDep,
    sess: PageSession,
    status: str | None = None,
    model: str | None = None,
    owner: str | None = None,
    after: str | None = None,
) -> Response:
    filters = {"status": status or None, "model": model or None, "owner": (owner or "").strip() or None}
    if filters["status"] not in (None, *STATUSES):
        filters["status"] = None
    rows, more = await admin.list_tasks(
        session,
        status=filters["status"],
        model=filters["model"],
        owner=filters["owner"],
        after=after or None,
        limit=PAGE_SIZE,
    )
    query = {k: v for k, v in filters.items() if v}
    next_url = f"?{urlencode({**query, 'after': rows[-1].id})}" if more and rows else None
    first_url = f"?{urlencode(query)}" if after else None
    return render(
        request,
        "videos.html",
        _ctx(
            request,
            sess,
            "videos",
            rows=[TaskOut.of(r, url=None) for r in rows],
            filters=filters,
            statuses=STATUSES,
            models=gw.registry.names(),
            next_url=next_url,
            first_url=first_url,
        ),
    )


async def _video_page(
    request: Request, session: SessionDep, sess: auth.DashboardSession, video_id: str, **extra: Any
) -> Response:
    row = await admin.get_task(session, video_id)
    return render(request, "video.html", _ctx(request, sess, "videos", v=TaskOut.of(row, url=None), row=row, **extra))


@router.get("/videos/{video_id}")
async def video(request: Request, session: SessionDep, sess: PageSession, video_id: str) -> Response:
    try:
        return await _video_page(request, session, sess, video_id)
    except NotFound:
        ctx = _ctx(request, sess, "videos", message=f"No video with id “{video_id}”.")
        return render(request, "missing.html", ctx, status_code=404)


@router.post("/videos/{video_id}/delete")
async def delete_video(
    request: Request, gw: GatewayDep, session: SessionDep, sess: CsrfSession, video_id: str
) -> Response:
    try:
        await admin.delete_task(gw, session, video_id)
    except GatewayError as exc:
        return await _video_page(request, session, sess, video_id, error=exc.message)
    return _see_other(f"{auth.PREFIX}/videos")


@router.api_route("/videos/{video_id}/content/{variant}", methods=["GET", "HEAD"])
async def content(
    request: Request, gw: GatewayDep, session: SessionDep, _: DataSession, video_id: str, variant: str
) -> Response:
    row = await admin.get_task(session, video_id)
    if row.deleted_at is not None:
        raise reads.not_found(video_id)
    return await reads.serve_asset(gw, row, variant, request, disposition="inline", session=session)


@router.get("/api/videos/{video_id}")
async def video_data(session: SessionDep, _: DataSession, video_id: str) -> JSONResponse:
    row = await admin.get_task(session, video_id)
    return secure(JSONResponse(TaskOut.of(row, url=None).model_dump(mode="json")))


# -- keys ----------------------------------------------------------------------------------------------


def _list(value: Any) -> list[str] | None:
    items = [v.strip() for v in str(value or "").replace("\n", ",").split(",") if v.strip()]
    return items or None


def _opt(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def _date(value: Any) -> float | None:
    text = _opt(value)
    return None if text is None else dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def _limits(form: Any) -> dict[str, Any]:
    return {
        "models": _list(form.get("models")),
        "rpm_limit": _opt(form.get("rpm_limit")),
        "max_concurrent": _opt(form.get("max_concurrent")),
        "quota_credits": _opt(form.get("quota_credits")),
        "ip_allowlist": _list(form.get("ip_allowlist")),
        "expires_at": _date(form.get("expires_at")),
    }


def _problem(exc: ValidationError | ValueError | GatewayError) -> str:
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    return str(exc)


async def _keys_page(
    request: Request, gw: GatewayDep, session: SessionDep, sess: auth.DashboardSession, **extra: Any
) -> Response:
    rows = [KeyOut.of(k) for k in await keys.list_keys(session)]
    rows.sort(key=lambda k: (k.status != "active", -k.created_at))
    ctx = _ctx(request, sess, "keys", keys=rows, models=gw.registry.names(), created=None, error=None, form={})
    return render(request, "keys.html", {**ctx, **extra})  # an error is shown on the page, as a form does


@router.get("/keys")
async def keys_page(request: Request, gw: GatewayDep, session: SessionDep, sess: PageSession) -> Response:
    return await _keys_page(request, gw, session, sess)


@router.post("/keys")
async def create_key(request: Request, gw: GatewayDep, session: SessionDep, sess: CsrfSession) -> Response:
    form = await request.form()
    try:
        body = KeyCreate(name=str(form.get("name") or "").strip(), owner=_opt(form.get("owner")), **_limits(form))
        key, secret = await admin.create_key(session, gw.registry, body)
    except (ValidationError, ValueError, GatewayError) as exc:
        return await _keys_page(request, gw, session, sess, error=_problem(exc), form=dict(form))
    return await _keys_page(request, gw, session, sess, created={"key": KeyOut.of(key), "secret": secret})


@router.post("/keys/{key_id}/revoke")
async def revoke_key(session: SessionDep, _: CsrfSession, key_id: str) -> RedirectResponse:
    await admin.revoke_key(session, await admin.get_key(session, key_id))
    return _see_other(f"{auth.PREFIX}/keys")


@router.post("/keys/{key_id}/limits")
async def edit_key(request: Request, gw: GatewayDep, session: SessionDep, sess: CsrfSession, key_id: str) -> Response:
    form = await request.form()
    key = await admin.get_key(session, key_id)
    try:
        body = KeyUpdate(**_limits(form), enabled=form.get("enabled") == "on")
        await admin.update_key(session, gw.registry, key, body)
    except (ValidationError, ValueError, GatewayError) as exc:
        return await _keys_page(request, gw, session, sess, error=f"{key.name}: {_problem(exc)}")
    return _see_other(f"{auth.PREFIX}/keys")


# -- channels ------------------------------------------------------------------------------------------


@router.get("/channels")
async def channels(request: Request, gw: GatewayDep, session: SessionDep, sess: PageSession) -> Response:
    rows = await admin.channel_report(session, gw.registry)
    return render(request, "channels.html", _ctx(request, sess, "channels", channels=rows))


@router.post("/api/channels/{name}/test")
async def check_channel(gw: GatewayDep, _: CsrfSession, name: str) -> JSONResponse:
    result = await service.check_channel(gw, name)
    return secure(JSONResponse({"ok": result.ok, "message": result.message}))


# -- usage ---------------------------------------------------------------------------------------------


def _day(value: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _range(since: str | None, until: str | None) -> tuple[dt.date, dt.date, float, float]:
    today = dt.datetime.now(dt.UTC).date()
    first = _day(since, today - dt.timedelta(days=6))
    last = max(_day(until, today), first)

    def ts(d: dt.date) -> float:
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()

    return first, last, ts(first), ts(last + dt.timedelta(days=1))  # the last day is included


@router.get("/usage")
async def usage(
    request: Request, session: SessionDep, sess: PageSession, since: str | None = None, until: str | None = None
) -> Response:
    first, last, t0, t1 = _range(since, until)
    report = await admin.usage_report(session, since=t0, until=t1, key_id=None, model=None)
    charts = {
        "credits_by_key": service.bars(service.per_key(report, "credits_charged")),
        "seconds_by_model": service.bars(service.per_model(report, "seconds")),
    }
    query = urlencode({"since": first.isoformat(), "until": last.isoformat()})
    return render(
        request,
        "usage.html",
        _ctx(
            request, sess, "usage", report=report, charts=charts, since=first, until=last, csv_url=f"usage.csv?{query}"
        ),
    )


@router.get("/usage.csv")
async def usage_csv(
    session: SessionDep, _: DataSession, since: str | None = Query(None), until: str | None = Query(None)
) -> PlainTextResponse:
    first, last, t0, t1 = _range(since, until)
    report = await admin.usage_report(session, since=t0, until=t1, key_id=None, model=None)
    name = f"vidgate-usage-{first.isoformat()}-{last.isoformat()}.csv"
    return PlainTextResponse(
        service.usage_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


# -- playground ----------------------------------------------------------------------------------------


@router.get("/playground")
async def playground(request: Request, gw: GatewayDep, sess: PageSession) -> Response:
    models = gw.registry.names()
    caps = {m: gw.registry.models[gw.registry.target(m) or m].summary() for m in models}
    default = BUILTIN if BUILTIN in models else (models[0] if models else None)
    return render(
        request, "playground.html", _ctx(request, sess, "playground", models=models, caps=caps, default=default)
    )


@router.post("/api/playground")
async def generate(request: Request, gw: GatewayDep, session: SessionDep, _: CsrfSession) -> JSONResponse:
    limit = int(gw.settings.max_image_bytes * 1.4) + 1024
    parsed = await parse_body(request, max_part_bytes=limit, max_file_bytes=gw.settings.max_image_bytes)
    # an empty file input is sent as a part with no name and no bytes: no reference image
    files = {n: u for n, u in parsed.files.items() if u.filename and u.file.size}
    body = ParsedBody({k: v for k, v in parsed.fields.items() if v != ""}, files, parsed.encoding)
    key = await service.playground_key(session)
    row, _replayed = await creation.create(
        gw,
        session,
        key,
        body,
        idempotency_key=None,
        path="/v1/videos",
        make_draft=lambda b: drafts.draft_create(gw, session, key, b),
    )
    return secure(JSONResponse(TaskOut.of(row, url=None).model_dump(mode="json")))
