"""The Django example's WSGI app wrapped in StatsdMiddleware: endpoints are Django's URL patterns."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from django.core.wsgi import get_wsgi_application

from statsd_instrument.wsgi import StatsdMiddleware, connect_django_exceptions, django_endpoint

connect_django_exceptions()  # exceptions Django answers as 500s keep their class in request_exceptions
app = StatsdMiddleware(
    get_wsgi_application(),
    service=os.environ.get("STATSD_SERVICE", "django_app"),
    endpoint=django_endpoint,
    exclude_paths=["/health"],
)
