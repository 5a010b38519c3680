"""The example's routes, as in the Flask example: /test/, /test1/ (ZeroDivisionError), /user/<id>, /health."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.urls import path


def test(request):
    return HttpResponse("rest")


def test1(request):
    1 / 0  # noqa: B018 - the article's deliberate failure; Django answers it with its 500 handler
    return HttpResponse("never")


def user(request, user_id: int):
    return JsonResponse({"user_id": user_id})


def health(request):
    return HttpResponse("ok")


urlpatterns = [
    path("test/", test),
    path("test1/", test1),
    path("user/<int:user_id>", user),
    path("health", health),
]
