"""Provider webhooks: delivery reports and inbound SMS. Public URLs (no login): each one checks the
provider's signature or secret before anything else, stores the report as it came and
answers at once; the worker applies it (sms/reports.py)."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import inbound, reports
from .providers import configured_urls
from .providers.base import inbound_token, report_token
from .providers.kannel import DLR_WORDS
from .simulator import sign

log = logging.getLogger(__name__)


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _json_object(request: HttpRequest) -> dict | JsonResponse:
    """The request body as a JSON object, or the 400 that says why it is not one."""
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _refuse(400, "the body is not JSON")
    return payload if isinstance(payload, dict) else _refuse(400, "expected a JSON object")


def _secrets(field: str, *schemes: str) -> list[str]:
    """The `field` ("username" or "password") of every configured provider URL
    (CRMSMS_SMS_URL, then CRMSMS_SMS_ROUTES) of these schemes: with routes, one provider
    can be configured with several accounts, and a callback may come for any of them."""
    urls = [url for url in map(urlsplit, configured_urls()) if url.scheme in schemes]
    return [unquote(value) for url in urls if (value := getattr(url, field))]


def _matches(given: str, expected: list[str]) -> bool:
    """True if `given` is one of the expected signatures or tokens (compared in constant time)."""
    return any(hmac.compare_digest(given.encode(), value.encode()) for value in expected)


def _simulator_payload(request: HttpRequest) -> dict | JsonResponse:
    """The signed JSON object the simulator sent, or the refusal to answer."""
    secrets = _secrets("username", "simulator")  # the simulator signs with its token, the one in its URL
    if not secrets:
        log.warning("simulator callback refused: no token in CRMSMS_SMS_URL to check its signature")
        return _refuse(403, "callbacks are accepted only when CRMSMS_SMS_URL has the simulator's token")
    signature = request.headers.get("X-Simulator-Signature", "")
    if not _matches(signature, [sign(secret, request.body) for secret in secrets]):
        log.warning("simulator callback refused: bad signature")
        return _refuse(403, "bad signature")
    payload = _json_object(request)
    if isinstance(payload, dict) and not _recent(payload.get("at")):
        # The signed body says when it was sent: an old one is a replay (the simulator signs
        # each retry anew). Within the window, a replay changes nothing: reports only move
        # forward and an inbound SMS is kept once per id.
        log.warning("simulator callback refused: sent at %r, outside the replay window", payload.get("at"))
        return _refuse(403, f"stale: a callback is accepted within {REPLAY_WINDOW.seconds // 60} minutes of being sent")
    return payload


REPLAY_WINDOW = timedelta(minutes=5)


def _recent(at) -> bool:
    try:
        sent = datetime.fromisoformat(str(at))
    except ValueError:
        return False
    if sent.tzinfo is None:
        return False
    return abs(timezone.now() - sent) <= REPLAY_WINDOW


@csrf_exempt
@require_POST
def simulator_report(request: HttpRequest) -> JsonResponse:
    payload = _simulator_payload(request)
    if isinstance(payload, JsonResponse):
        return payload
    if not isinstance(payload.get("status"), str):
        return _refuse(400, 'expected an object with a "status"')
    reports.store("simulator", status=payload["status"], reference=str(payload.get("reference") or ""),
                  provider_message_id=str(payload.get("id") or ""), payload=payload)
    return JsonResponse({"status": "stored"})


@csrf_exempt
@require_POST
def simulator_inbound(request: HttpRequest) -> JsonResponse:
    payload = _simulator_payload(request)
    if isinstance(payload, JsonResponse):
        return payload
    if not isinstance(payload.get("from"), str) or not isinstance(payload.get("text"), str):
        return _refuse(400, 'expected an object with "from" and "text"')
    inbound.receive("simulator", from_number=payload["from"], text=payload["text"],
                    to_number=str(payload.get("to") or ""), provider_message_id=str(payload.get("id") or ""),
                    payload=payload)
    return JsonResponse({"status": "received"})


# --- Twilio ----------------------------------------------------------------------------------

def twilio_signature(token: str, url: str, params: dict[str, list[str]]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(auth token, the full URL Twilio called, then each
    POST parameter's name and value, names sorted)), as Twilio computes it."""
    data = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twilio_refusal(request: HttpRequest, what: str) -> JsonResponse | None:
    """The 403 for a request not signed by the holder of a configured Twilio auth token."""
    tokens = _secrets("password", "twilio", "twilio+http")
    if not tokens:
        log.warning("Twilio %s refused: CRMSMS_SMS_URL is not a twilio:// URL with its auth token", what)
        return _refuse(403, "not configured for Twilio")
    # The URL as Twilio called it: ours, as providers know it (behind a proxy the Host may differ).
    url = settings.CRMSMS_PUBLIC_URL.rstrip("/") + request.get_full_path()
    params = {name: request.POST.getlist(name) for name in request.POST}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not _matches(signature, [twilio_signature(token, url, params) for token in tokens]):
        log.warning("Twilio %s refused: bad signature for %s", what, url)
        return _refuse(403, "bad signature")
    return None


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> JsonResponse:
    """Twilio's StatusCallback for a message (our reference in ?ref=)."""
    refused = _twilio_refusal(request, "status callback")
    if refused:
        return refused
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or ""
    if not status:
        return _refuse(400, "no MessageStatus")
    payload = {name: request.POST.get(name) for name in request.POST}
    if request.POST.get("ErrorCode"):
        payload["error"] = {"code": request.POST["ErrorCode"],
                            "message": f"Twilio error {request.POST['ErrorCode']}."}
    reports.store("twilio", status=status, reference=request.GET.get("ref", ""),
                  provider_message_id=request.POST.get("MessageSid", ""), payload=payload)
    return JsonResponse({"status": "stored"})


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS someone sent to our Twilio number (the number's "A message comes in" webhook),
    signed like the status callbacks. The empty TwiML answer sends nothing back."""
    refused = _twilio_refusal(request, "inbound SMS")
    if refused:
        return refused
    if not request.POST.get("From") or "Body" not in request.POST:
        return _refuse(400, "expected From and Body")
    inbound.receive("twilio", from_number=request.POST["From"], text=request.POST["Body"],
                    to_number=request.POST.get("To", ""), provider_message_id=request.POST.get("MessageSid", ""),
                    payload={name: request.POST.get(name) for name in request.POST})
    return HttpResponse("<Response/>", content_type="text/xml")


# --- Vonage ----------------------------------------------------------------------------------

def _vonage_params(request: HttpRequest) -> dict | JsonResponse:
    """Vonage calls with GET, a POSTed form or a POSTed JSON object, as its settings say."""
    params = dict(request.GET.items())
    if request.method == "POST":
        if request.content_type == "application/json":
            body = _json_object(request)
            if isinstance(body, JsonResponse):
                return body
            params.update({k: str(v) for k, v in body.items()})
        else:
            params.update(request.POST.items())
    return params


@csrf_exempt
@require_http_methods(["GET", "POST"])
def vonage_dlr(request: HttpRequest) -> JsonResponse:
    """Vonage's delivery receipt for one part of a message (GET or POST, form or JSON). The
    callback URL we gave carries a token only the holder of the API secret can make."""
    secrets = _secrets("password", "vonage", "vonage+http")
    if not secrets:
        log.warning("Vonage receipt refused: CRMSMS_SMS_URL is not a vonage:// URL with its secret")
        return _refuse(403, "not configured for Vonage")
    params = _vonage_params(request)
    if isinstance(params, JsonResponse):
        return params
    reference = params.get("client-ref", "")
    token = params.pop("token", "")
    if not reference or not _matches(token, [report_token(secret, reference) for secret in secrets]):
        log.warning("Vonage receipt refused: bad token for client-ref %r", reference)
        return _refuse(403, "bad token")
    if not params.get("status"):
        return _refuse(400, "no status")
    if params.get("err-code") not in (None, "", "0"):
        params["error"] = {"code": params["err-code"], "message": f"Vonage error {params['err-code']}."}
    reports.store("vonage", status=params["status"], reference=reference,
                  provider_message_id=params.get("messageId", ""), payload=params)
    return JsonResponse({"status": "stored"})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def vonage_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS someone sent to our Vonage number (the account's inbound SMS webhook, whose URL
    carries a token made from the API secret: `crmsms webhooks` prints it)."""
    params = _vonage_params(request)
    if isinstance(params, JsonResponse):
        return params
    tokens = [inbound_token(secret) for secret in _secrets("password", "vonage", "vonage+http")]
    if not tokens or not _matches(params.pop("token", ""), tokens):
        log.warning("Vonage inbound SMS refused: bad token")
        return _refuse(403, "bad token")
    if not params.get("msisdn") or "text" not in params:
        return _refuse(400, "expected msisdn and text")
    # Vonage sends numbers as digits only.
    inbound.receive("vonage", from_number="+" + params["msisdn"].lstrip("+"), text=params["text"],
                    to_number=params.get("to", ""), provider_message_id=params.get("messageId", ""), payload=params)
    return HttpResponse(status=204)


# --- Kannel ----------------------------------------------------------------------------------

KANNEL = ("kannel", "kannel+https")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def kannel_dlr(request: HttpRequest) -> JsonResponse:
    """Kannel's delivery report, called on the `dlr-url` each message carried (our reference,
    a token made from it and the sendsms password, then Kannel's %d, %T, %F and %A)."""
    params = {**request.GET.dict(), **request.POST.dict()}
    passwords = _secrets("password", *KANNEL)
    reference, token = params.get("ref", ""), params.pop("token", "")
    if not passwords or not reference or not _matches(token, [report_token(p, reference) for p in passwords]):
        log.warning("Kannel report refused: bad token for ref %r", reference)
        return _refuse(403, "bad token")
    word = DLR_WORDS.get(params.get("status", ""))
    if word is None:
        return _refuse(400, "status must be one of Kannel's DLR types: " + ", ".join(DLR_WORDS))
    if word in ("undelivered", "smsc_rejected"):
        params["error"] = {"code": f"kannel_{params['status']}",
                           "message": f"The SMSC said « {params.get('reply') or 'nothing'} »."}
    reports.store("kannel", status=word, reference=reference, provider_message_id=params.get("smsc_id", ""),
                  payload=params)
    return JsonResponse({"status": "stored"})


def _kannel_text(request: HttpRequest, params: dict) -> str:
    """The text of an SMS Kannel passes on. A UCS-2 one (coding=%c is 2: an accent outside
    GSM's alphabet, an emoji) comes as its raw UTF-16 octets unless Kannel's `mo-recode`
    turned it into UTF-8 (then charset=%C says so): read the octets from the query as they
    are, in the charset Kannel names."""
    charset = params.get("charset", "").upper()
    if params.get("coding") != "2" or charset in ("UTF-8", "UTF8"):
        return params["text"]
    octets = parse_qs(request.META.get("QUERY_STRING", ""), encoding="latin-1").get("text", [""])[0]
    try:
        return octets.encode("latin-1").decode(charset if charset and charset != "UCS-2" else "utf-16-be")
    except (LookupError, UnicodeError):
        return params["text"]


@csrf_exempt
@require_http_methods(["GET", "POST"])
def kannel_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS someone sent us, from a Kannel `sms-service` whose get-url is this URL with
    from=%p&to=%P&text=%a&id=%I (Kannel's id: a retried call is received once)."""
    params = {**request.GET.dict(), **request.POST.dict()}
    tokens = [inbound_token(p) for p in _secrets("password", *KANNEL)]
    if not tokens or not _matches(params.get("token", ""), tokens):
        log.warning("Kannel inbound SMS refused: bad token")
        return _refuse(403, "bad token")
    if not params.get("from") or "text" not in params:
        return _refuse(400, "expected from=%p and text=%a")
    params.pop("token")
    text = params["text"] = _kannel_text(request, params)
    inbound.receive("kannel", from_number=params["from"], text=text, to_number=params.get("to", ""),
                    provider_message_id=params.get("id", ""), payload=params)
    # 200 and an empty body: Kannel retries anything else (even a 204), and sends a body back as an SMS.
    return HttpResponse(b"", content_type="text/plain")
