"""One shape for every validation error the API returns, whether it comes from our forms
(the same validation as the UI) or from django-ninja's type checks:

    {"detail": "Validation failed.", "errors": [{"field": "phone_mobile", "rule": "invalid_phone",
                                                 "message": "Mobile: 'abc' is not a phone number..."}]}
"""

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError


class ApiError(Exception):
    def __init__(self, status: int, errors: list[dict], detail: str = "Validation failed."):
        self.status, self.errors, self.detail = status, errors, detail


def field_error(field: str, rule: str, message: str, status: int = 422) -> ApiError:
    return ApiError(status, [{"field": field, "rule": rule, "message": message}])


def form_error(form, rename: dict[str, str] | None = None) -> ApiError:
    rename = rename or {}
    errors = []
    for field, items in form.errors.as_data().items():
        for error in items:
            for message in error.messages:
                errors.append({
                    "field": rename.get(field, field) if field != "__all__" else None,
                    "rule": error.code or "invalid",
                    "message": message,
                })
    return ApiError(422, errors)


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError):
        return api.create_response(request, {"detail": exc.detail, "errors": exc.errors}, status=exc.status)

    @api.exception_handler(NinjaValidationError)
    def _schema_error(request: HttpRequest, exc: NinjaValidationError):
        errors = []
        for item in exc.errors:
            loc = [str(p) for p in item.get("loc", []) if p not in ("body", "payload", "query", "path")]
            errors.append({"field": ".".join(loc) or None, "rule": item.get("type", "invalid"),
                           "message": item.get("msg", "invalid value")})
        return api.create_response(request, {"detail": "Validation failed.", "errors": errors}, status=422)
