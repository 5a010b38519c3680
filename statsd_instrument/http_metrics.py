"""The request metrics' contract (names, types, tags, bounded label values, the keys an app sets on a request)
and the :class:`RequestRecorder` that sends them; the middlewares that feed it share
:mod:`statsd_instrument.middleware`.

The integrations (Flask, WSGI, ASGI) describe a finished request the same way (service, method, endpoint,
status, exception) and hand it to a :class:`RequestRecorder`, which writes the metrics of the contract into
the client's buffer in one call; they leave within the client's flush window (see
:mod:`statsd_instrument.transport`), merged with the other requests of that window:

=========================== ======= ======================================= ==============================
on the wire                 type    tags                                    exported as (shipped mapping)
=========================== ======= ======================================= ==============================
``request_count``           counter service, method, endpoint, status       ``http_requests_total``
``request_latency_seconds`` timer   service, method, endpoint, status       ``http_request_duration_seconds``
``request_exceptions``      counter service, method, endpoint, exception    ``http_request_exceptions_total``
``request_in_flight``       gauge   service (opt-in, sent as +1/-1 deltas)  ``http_requests_in_flight``
``app_info``                gauge   service, version (opt-in, value 1)      ``app_info``
=========================== ======= ======================================= ==============================

Label values taken from a request are bounded: methods outside :data:`STANDARD_METHODS` become
:data:`OTHER_METHOD` and a path no route matches becomes :data:`UNMATCHED_ENDPOINT`, so random URLs or
methods cannot create new series.

While it handles a request, an app (or an integration such as the Flask extension) may set these keys on
the WSGI environ or the ASGI scope: :data:`ENDPOINT_KEY` (the endpoint label, a route template),
:data:`EXCEPTION_KEY` (the class name of an exception it answered itself), :data:`SKIP_KEY` (true: send
nothing for this request) and :data:`TAGS_KEY` (extra ``"k:v"`` tags, already checked).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, Sequence

from statsd_instrument import validation
from statsd_instrument.metrics import Counter, Gauge, Histogram
from statsd_instrument.transport import REQUESTS_MAX
from statsd_instrument.validation import Tags, tag_value
from statsd_instrument.wire import format_ms

log = logging.getLogger("statsd_instrument")

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
#: the ``method`` label of every request whose method is not in :data:`STANDARD_METHODS`
OTHER_METHOD = "OTHER"
#: the ``endpoint`` label of every request no route matched (404s, scans, redirects to a canonical URL)
UNMATCHED_ENDPOINT = "<unmatched>"

REQUEST_COUNT = "request_count"
REQUEST_LATENCY = "request_latency_seconds"
REQUEST_EXCEPTIONS = "request_exceptions"
REQUESTS_IN_FLIGHT = "request_in_flight"
APP_INFO = "app_info"

# The contract as declared metrics: `statsd-instrument gen-mapping statsd_instrument.http_metrics` writes
# their rules, and the tests check the shipped exporter-mapping.yml against them. RequestRecorder sends the
# same names and tags through a path of its own, cheaper than a declared call: per label set, one append of
# the request's duration (BufferedTransport.samples), folded into the buffer once per window.
_ROUTE_TAGS = ("service", "method", "endpoint")
REQUESTS = Counter(
    REQUEST_COUNT,
    "HTTP requests handled, by service, method, endpoint (route template) and status.",
    tags=(*_ROUTE_TAGS, "status"),
    prometheus_name="http_requests_total",
)
REQUEST_DURATION = Histogram(
    REQUEST_LATENCY,
    "HTTP request latency in seconds, by service, method, endpoint (route template) and status.",
    tags=(*_ROUTE_TAGS, "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    prometheus_name="http_request_duration_seconds",
)
REQUEST_ERRORS = Counter(
    REQUEST_EXCEPTIONS,
    "Exceptions raised by views (answered by an error handler or not), by service, method, endpoint and "
    "exception class.",
    tags=(*_ROUTE_TAGS, "exception"),
    prometheus_name="http_request_exceptions_total",
)
IN_FLIGHT = Gauge(
    REQUESTS_IN_FLIGHT,
    "Requests being served right now, summed over all workers (opt-in: STATSD_IN_FLIGHT).",
    tags=("service",),
    prometheus_name="http_requests_in_flight",
)
APP_INFO_GAUGE = Gauge(
    APP_INFO,
    "Always 1; the service and version of the running app as labels (opt-in: STATSD_APP_VERSION).",
    tags=("service", "version"),
)

#: how often (seconds) each process repeats the info gauge, so an exporter restarted later still shows it
INFO_EVERY_S = 60.0

_getpid = os.getpid
_monotonic = time.monotonic

BUILTIN_TAG_KEYS = frozenset({"service", "method", "endpoint", "status", "exception", "version"})

# keys an app (or an integration such as the Flask extension) may set on the environ / scope of a request
ENDPOINT_KEY = "statsd_instrument.endpoint"  # the endpoint label (a route template)
EXCEPTION_KEY = "statsd_instrument.exception"  # the class name of an exception the app answered itself
SKIP_KEY = "statsd_instrument.skip"  # true: send nothing for this request
TAGS_KEY = "statsd_instrument.tags"  # extra "k:v" tags for this request (already checked)


def method_label(method: str) -> str:
    """The bounded ``method`` label: the method itself if standard, else :data:`OTHER_METHOD`.

    >>> method_label("get"), method_label("PURGE"), method_label("X" * 500)
    ('GET', 'OTHER', 'OTHER')
    """
    upper = method.upper()
    return upper if upper in STANDARD_METHODS else OTHER_METHOD


def tag_list(tags: Tags, field: str) -> list[str]:
    """Static tags of a middleware as checked ``"k:v"`` strings (:func:`statsd_instrument.validation.tag_list`
    with the keys this module sets itself refused); errors name ``field``.

    >>> tag_list({"region": "eu-west", "tier": 1}, "tags")
    ['region:eu-west', 'tier:1']
    """
    return validation.tag_list(tags, field, reserved=BUILTIN_TAG_KEYS)


class RequestRecorder:
    """Emits the metrics of finished requests for one service through one client (never raises).

    ``started()`` is called when a request begins (it only buffers the in-flight +1 when that gauge is on);
    ``finished()`` when the response has been fully sent: it buffers count, latency and the exception if any;
    they leave within the client's flush window.

    >>> from statsd_instrument import statsd
    >>> rec = RequestRecorder(statsd, service="shop")
    >>> rec.finished("GET", "/user/<int:user_id>", 200, 0.0042)
    >>> rec.request_tags("GET", "/user/<int:user_id>", "200 OK")
    ('service:shop', 'method:GET', 'endpoint:/user/<int:user_id>', 'status:200')
    >>> rec.request_tags("BREW", None, 405)
    ('service:shop', 'method:OTHER', 'endpoint:<unmatched>', 'status:405')
    """

    def __init__(
        self,
        client: Any,
        service: str,
        tags: Tags = None,
        in_flight: bool = False,
        version: str | None = None,
        tags_field: str = "tags",
    ) -> None:
        self.client = client
        if not tag_value(service):
            raise ValueError(f"service={service!r}: expected a non-empty service name")
        self.service_tag = "service:" + tag_value(service)
        with contextlib.suppress(
            Exception
        ):  # the client's telemetry is labelled with this service (if it can)
            client.note_service(tag_value(service))
        self.extra_tags = tag_list(tags, tags_field)
        self.in_flight = in_flight
        self.info_tags = None if version is None else [self.service_tag, "version:" + tag_value(version)]
        self._tag_cache: dict[tuple[str, str | None, object], tuple[str, ...]] = {}
        # Per label set, the request's buffer entries as (client settings generation, count key, latency key,
        # in-flight -1 line or None, the transport's list of its durations or None, the transport's fork
        # flag, the transport's list of in-flight gauge changes or None), made once with Client.prepare; only
        # for a statsd_instrument Client whose metric calls are not overridden.
        self._shapes: dict[tuple[str, str | None, object], tuple] = {}
        self._shapes_ok = _plain_client(client)
        # the in-flight gauge's (generation, list of changes, fork flag, first append) for started() and
        # skipped() (PreparedMetric.gauge), once a first call made it
        self._in_flight_list: tuple | None = None
        self._in_flight_made = -1  # the client's settings generation it was looked up in
        self._info_pid = 0
        self._info_at = 0.0
        self._failed_once = False

    def request_tags(self, method: str, endpoint: str | None, status: object) -> tuple[str, ...]:
        """The tags of ``request_count`` / ``request_latency_seconds`` from raw values, bounded and cleaned.

        ``method`` as received, ``endpoint`` a template or ``None`` (unmatched), ``status`` an int or a
        WSGI status line. Cached per distinct raw triple (the cache is cleared when it grows past 4,096).
        """
        key = (method, endpoint, status)
        tags = self._tag_cache.get(key)
        if tags is None:
            status_text = str(status)[:3]
            tags = (
                self.service_tag,
                "method:" + method_label(method),
                "endpoint:" + ((tag_value(endpoint) if endpoint else "") or UNMATCHED_ENDPOINT),
                "status:" + (status_text if status_text.isdigit() else "0"),
                *self.extra_tags,
            )
            if len(self._tag_cache) >= 4096:
                self._tag_cache.clear()
            self._tag_cache[key] = tags
        return tags

    def started(self) -> None:
        """A request began: buffer the in-flight +1 if that gauge is on."""
        if self.in_flight:
            self._in_flight(1)

    def skipped(self) -> None:
        """A request that ``started()`` turned out to be excluded: only undo its in-flight +1."""
        if self.in_flight:
            self._in_flight(-1)

    def _in_flight(self, delta: int) -> None:
        try:
            client = self.client
            fast = self._in_flight_list
            if fast is not None and fast[0] == client.settings_generation:
                # one append to the gauge series' list of changes (no lock), as a declared Gauge.inc
                changes = fast[1]
                if changes and fast[2][0]:
                    changes.append(delta)
                else:
                    fast[3](changes, delta)
                return
            client.gauge(REQUESTS_IN_FLIGHT, delta, tags=[self.service_tag], delta=True)
            if self._shapes_ok and self._in_flight_made != client.settings_generation:
                self._in_flight_made = client.settings_generation  # no list (capture mode): not again
                prepared = client.prepare("g", REQUESTS_IN_FLIGHT, (self.service_tag,), delta=True)
                self._in_flight_list = prepared.gauge()
        except Exception:
            self._failed("in-flight gauge")

    def finished(
        self,
        method: str,
        endpoint: str | None,
        status: object,
        elapsed_s: float,
        exception: str | None = None,
        request_tags: Sequence[str] = (),
    ) -> None:
        """A request ended: buffer count, latency (float ms) and exception in one call.

        ``method``, ``endpoint`` and ``status`` as for :meth:`request_tags` (raw; bounded here).
        """
        try:
            client = self.client
            if exception is None and not request_tags and self._shapes_ok:
                # The common case: a label set seen before. The buffer keys of count and latency (exactly
                # what the calls below use, from the client's prepared metrics) go to the client's transport
                # in one call; an entry is only used while the client's settings generation is the one it
                # was made in (configure() and capture mode change it).
                shape = self._shapes.get((method, endpoint, status))
                if shape is not None and shape[0] == client.settings_generation:
                    # One append to the transport's list of finished requests (folded into the buffer by
                    # the flusher): no lock, no formatting, no getpid() (a system call). The first request
                    # of a window finds the list empty, and in a forked child the fork flag reads 0: unless
                    # the info gauge is due (the general path below sends it), the client's append_first
                    # checks the process (a child empties what its parent left) and the flusher.
                    # With the in-flight gauge on, its -1 is one more append, to the gauge's list of
                    # changes (merged with the window's +1s: see BufferedTransport.gauges).
                    durations = shape[4]
                    if durations is not None:
                        if 0 < len(durations) < REQUESTS_MAX and shape[5][0]:
                            durations.append(elapsed_s)
                            changes = shape[6]
                            if changes is not None:
                                if changes:
                                    changes.append(-1)
                                else:
                                    client.append_first(changes, -1)
                            return
                        if self.info_tags is None or not self._info_due():
                            client.append_first(durations, elapsed_s)
                            if shape[6] is not None:
                                client.append_first(shape[6], -1)
                            return
                    # no such list (capture mode): one buffer call
                    elif self.info_tags is None or _monotonic() - self._info_at < INFO_EVERY_S:
                        client._add_request(shape[1], shape[2], format_ms(elapsed_s * 1000.0), shape[3])
                        return
            tags = self.request_tags(method, endpoint, status)
            if request_tags:
                tags = tags + tuple(request_tags)
            client.increment(REQUEST_COUNT, tags=tags)
            client.timing(REQUEST_LATENCY, elapsed_s * 1000.0, tags=tags)
            if exception is not None:
                exc_tags = (*tags[:3], "exception:" + tag_value(exception), *tags[4:])
                client.increment(REQUEST_EXCEPTIONS, tags=exc_tags)
            if self.in_flight:
                client.gauge(REQUESTS_IN_FLIGHT, -1, tags=[self.service_tag], delta=True)
            if self.info_tags is not None and self._info_due():
                self._info_pid, self._info_at = _getpid(), _monotonic()
                client.gauge(APP_INFO, 1, tags=self.info_tags)
            if exception is None and not request_tags and self._shapes_ok:
                self._remember_shape(method, endpoint, status, tags)
        except Exception:
            self._failed("request metrics")

    def _info_due(self) -> bool:
        # the info gauge goes out with the first request of each process, then every INFO_EVERY_S
        return _getpid() != self._info_pid or _monotonic() - self._info_at >= INFO_EVERY_S

    def _remember_shape(self, method: str, endpoint: str | None, status: object, tags: Sequence[str]) -> None:
        client = self.client
        generation = client.settings_generation
        count_key = client.prepare("c", REQUEST_COUNT, tags).key()
        latency_key = client.prepare("ms", REQUEST_LATENCY, tags).key()
        if count_key is None or latency_key is None:  # a tag left out is counted by each call: not cached
            return
        line = changes = None
        if self.in_flight:
            in_flight = client.prepare("g", REQUESTS_IN_FLIGHT, (self.service_tag,), delta=True)
            line = in_flight.line(-1).encode()
            changes = in_flight.gauge()[1]
        durations = client.samples(count_key, latency_key) if client.samples is not None else None
        if len(self._shapes) >= 4096:
            self._shapes.clear()
        self._shapes[(method, endpoint, status)] = (
            generation,
            count_key,
            latency_key,
            line,
            durations if changes is not None or not self.in_flight else None,
            client._here,  # the fork flag (BufferedTransport.here) of the transport holding those lists
            changes,
        )

    def _failed(self, what: str) -> None:
        # metrics must never break the app: log the first failure with its traceback, later ones quietly
        if not self._failed_once:
            self._failed_once = True
            log.warning(
                "statsd_instrument: sending %s failed; the request is unaffected", what, exc_info=True
            )
        else:
            log.debug("statsd_instrument: sending %s failed", what, exc_info=True)


def _plain_client(client: Any) -> bool:
    """Whether ``client`` is a :class:`statsd_instrument.Client` whose metric calls are the stock ones, so
    that the buffer keys of its calls can be cached (:meth:`~statsd_instrument.client.PreparedMetric.key`).

    >>> from statsd_instrument import Client
    >>> c = Client(protocol="null")
    >>> _plain_client(c), _plain_client(object())
    (True, False)
    >>> c.close()
    """
    from statsd_instrument.client import Client

    kind = type(client)
    return isinstance(client, Client) and all(
        getattr(kind, name) is getattr(Client, name)
        for name in ("increment", "timing", "gauge", "flush", "prepare", "use_transport")
    )
