"""A minimal Django project configured in code, served through ``get_wsgi_application()``.

``DEBUG_PROPAGATE_EXCEPTIONS`` lets an unhandled error leave Django, so wsgidev's debugger
renders it; CSRF protection stays on, as in a real project.
"""

from __future__ import annotations

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    DEBUG_PROPAGATE_EXCEPTIONS=True,
    SECRET_KEY="integration-tests-only-not-a-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.html import format_html  # noqa: E402


def guestbook(request: HttpRequest) -> HttpResponse:
    """A page with a form; posting it greets the name given."""
    if request.method == "POST":
        name = request.POST.get("name", "")
        return JsonResponse({"greeting": f"Hello, {name}!", "path": request.path})
    return HttpResponse(
        format_html(
            '<h1>Guestbook</h1><form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<input name="name"></form>',
            get_token(request),
        )
    )


def find_invoice(number: int) -> dict[str, int]:
    invoices: dict[int, dict[str, int]] = {1: {"total": 10}}
    return invoices[number]


def invoice(request: HttpRequest, number: int) -> JsonResponse:
    return JsonResponse(find_invoice(number))


urlpatterns = [
    path("", guestbook),
    path("invoices/<int:number>", invoice),
]

app = get_wsgi_application()
