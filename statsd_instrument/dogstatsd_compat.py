"""The rest of datadog's ``DogStatsd`` surface on :class:`~statsd_instrument.client.Client`.

``from datadog import statsd`` code also calls these; each is accepted, and sends what statsd_exporter
can use without losing anything:

* ``gauge_with_timestamp`` / ``count_with_timestamp``: a plain gauge / counter line, **without** datadog's
  ``|T<unix ts>`` field. statsd_exporter never forwards source timestamps to Prometheus (0.31+ checks the
  field and ignores it), 0.30 drops the whole line and 0.28 counts an ``invalid_sample_factor``. So the
  value is counted at arrival on every exporter version; the timestamp is checked (a number) and dropped.
* ``distributed``: like ``timed`` (decorator, sync or async, and context manager), sending a distribution
  (``|d``, which the exporter does *not* divide) in **seconds**, datadog's default unit, measured with
  ``time.perf_counter()`` to the microsecond; ``use_ms=True`` sends float milliseconds as datadog's
  ``use_ms`` does (datadog rounds them to whole ms).
* ``event`` / ``service_check``: not metrics. statsd_exporter cannot parse ``_e{..}`` / ``_sc|`` lines
  (every one counts a ``statsd_exporter_sample_errors_total`` and is dropped), so they are accepted, never
  sent, and logged once per process and kind on the ``statsd_instrument`` logger.
* ``cardinality=`` (on every metric call): accepted and ignored. datadog appends ``|card:<value>``, which
  statsd_exporter counts as an error (0.28: ``invalid_sample_factor``; 0.30: ``malformed_container_id``,
  losing the line).

>>> from statsd_instrument import Client
>>> c = Client(protocol="null")
>>> with c.capture_lines() as lines:
...     c.gauge_with_timestamp("users.online", 123, 1713804588, tags=["zone:a"])
...     c.count_with_timestamp("files.transferred", 4, timestamp=1713804588)
...     c.event("Deploy", "v2 is out")
>>> lines
['users.online:123|g|#zone:a', 'files.transferred:4|c']
>>> c.close()
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from statsd_instrument import wire
from statsd_instrument.measure import Distributed
from statsd_instrument.validation import Tags

log = logging.getLogger("statsd_instrument")


class DogStatsdCompat:
    """Mixin of :class:`~statsd_instrument.client.Client`: DogStatsd calls beyond the core ones.

    >>> from statsd_instrument import statsd
    >>> statsd.OK, statsd.WARNING, statsd.CRITICAL, statsd.UNKNOWN
    (0, 1, 2, 3)
    """

    #: datadog's service check statuses, so ``statsd.service_check(name, statsd.OK)`` runs.
    OK, WARNING, CRITICAL, UNKNOWN = (0, 1, 2, 3)
    #: datadog's unit switch for ``timed``/``distributed``: the unit of their ``elapsed`` and of what
    #: ``distributed`` sends; ``timed`` always sends float milliseconds (see the module docstring)
    use_ms = False
    _told_dropped: set = set()  # kinds ("event", "service_check") already logged in this process

    if TYPE_CHECKING:  # what this mixin calls, defined by Client (declared here for type checkers only)

        def gauge(
            self, metric: str, value: float, tags: Tags = None, sample_rate: float | None = None
        ) -> None: ...
        def increment(
            self, metric: str, value: float = 1, tags: Tags = None, sample_rate: float | None = None
        ) -> None: ...
        def flush(self) -> None: ...
        def close(self) -> None: ...
        def _ensure(self) -> None: ...
        def _invalid(self, metric: Any, kind: str, err: Exception) -> None: ...

    def _timestamp_ok(self, metric: Any, kind: str, timestamp: object) -> bool:
        try:
            wire.format_number(timestamp)
        except ValueError:
            self._ensure()
            self._invalid(
                metric, kind, ValueError(f"timestamp={timestamp!r}: expected a unix time in seconds")
            )
            return False
        return True

    def gauge_with_timestamp(
        self,
        metric: str,
        value: float,
        timestamp: int,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """``gauge`` with datadog's timestamp argument; the line goes without ``|T`` (module docstring).

        >>> from statsd_instrument import statsd
        >>> with statsd.capture_lines() as lines:
        ...     statsd.gauge_with_timestamp("queue_depth", 7, 1713804588)
        >>> lines
        ['queue_depth:7|g']
        """
        if self._timestamp_ok(metric, "g", timestamp):
            self.gauge(metric, value, tags, sample_rate)

    def count_with_timestamp(
        self,
        metric: str,
        value: float,
        timestamp: int = 0,
        tags: Tags = None,
        sample_rate: float | None = None,
        cardinality: str | None = None,
    ) -> None:
        """``count`` with datadog's timestamp argument; the line goes without ``|T`` (module docstring).

        >>> from statsd_instrument import statsd
        >>> with statsd.capture_lines() as lines:
        ...     statsd.count_with_timestamp("files_total", 3, 1713804588, tags={"kind": "pdf"})
        >>> lines
        ['files_total:3|c|#kind:pdf']
        """
        if self._timestamp_ok(metric, "c", timestamp):
            self.increment(metric, value, tags, sample_rate)

    def distributed(
        self,
        metric: str | None = None,
        tags: Tags = None,
        sample_rate: float | None = None,
        use_ms: bool | None = None,
    ) -> Any:
        """Decorator (sync or async) and context manager sending the elapsed time as a distribution:
        seconds (datadog's default), or milliseconds with ``use_ms=True``.

        >>> from statsd_instrument import statsd
        >>> with statsd.capture_lines() as lines:
        ...     with statsd.distributed("render_seconds", tags=["view:home"]):
        ...         pass
        >>> lines[0].startswith("render_seconds:") and lines[0].endswith("|d|#view:home")
        True
        """
        if use_ms is None:
            use_ms = self.use_ms
        return Distributed(metric, tags, sample_rate, client=self, use_ms=bool(use_ms))

    def _dropped_once(self, kind: str, what: object) -> None:
        if kind not in DogStatsdCompat._told_dropped:
            DogStatsdCompat._told_dropped.add(kind)
            log.warning(
                "statsd_instrument: statsd.%s(%r) accepted and not sent: statsd_exporter has no %ss "
                "(logged once per process)",
                kind,
                what,
                kind.replace("_", " "),
            )

    def event(
        self,
        title: str,
        message: str,
        alert_type: str | None = None,
        aggregation_key: str | None = None,
        source_type_name: str | None = None,
        date_happened: int | None = None,
        priority: str | None = None,
        tags: Tags = None,
        hostname: str | None = None,
        cardinality: str | None = None,
    ) -> None:
        """Accepted and not sent (statsd_exporter has no events); logged once per process.

        >>> from statsd_instrument import statsd
        >>> with statsd.capture_lines() as lines:
        ...     statsd.event("Deploy", "v2 is out", alert_type="success")
        >>> lines
        []
        """
        self._dropped_once("event", title)

    def service_check(
        self,
        check_name: str,
        status: int,
        tags: Tags = None,
        timestamp: int | None = None,
        cardinality: str | None = None,
        hostname: str | None = None,
        message: str | None = None,
    ) -> None:
        """Accepted and not sent (statsd_exporter has no service checks); logged once per process.

        >>> from statsd_instrument import statsd
        >>> with statsd.capture_lines() as lines:
        ...     statsd.service_check("db.up", statsd.OK)
        >>> lines
        []
        """
        self._dropped_once("service_check", check_name)

    # -- datadog's buffering, fork and telemetry controls ----------------------------------------------------
    # This client always batches per process, detects forks by pid and sends no telemetry lines, so these are
    # the honest equivalents: the ones that mean "send what is buffered now" flush, the ones that close close,
    # and switches for behaviour this client has built in (or deliberately lacks) are accepted and do nothing.

    def open_buffer(self, max_buffer_size: Any = None) -> None:
        """Accepted for datadog compatibility: this client always buffers; see :meth:`close_buffer`.

        >>> from statsd_instrument import Client
        >>> c = Client(protocol="null")
        >>> c.open_buffer(); c.increment("a"); c.close_buffer(); c.stats["sent_lines"]
        1
        >>> c.close()
        """

    def close_buffer(self) -> None:
        """Send what is buffered now (datadog's ``close_buffer``)."""
        self.flush()

    flush_buffered_metrics = close_buffer
    flush_aggregated_metrics = close_buffer

    def wait_for_pending(self, timeout: float | None = None) -> None:
        """Send what is buffered now (datadog waits for its background sender's queue here)."""
        self.flush()

    def stop(self, timeout: float | None = None) -> None:
        """Send what is buffered now (datadog stops its background sender here; this client has none)."""
        self.flush()

    def close_socket(self, quiet: bool = False) -> None:
        """Send what is buffered and close the socket; the next call opens a new one."""
        self.close()

    def __enter__(self) -> Any:
        """``with statsd:`` batches like datadog's buffered context; the block's lines leave at its end.

        >>> from statsd_instrument import Client
        >>> c = Client(protocol="null")
        >>> with c:
        ...     c.increment("a"); c.increment("b")
        >>> c.stats["sent_lines"]
        2
        >>> c.close()
        """
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def _accepted_noop(self, *args: Any, **kwargs: Any) -> None:
        """A datadog switch for behaviour this client has built in (batching, pid-checked forks) or lacks
        on purpose (aggregation, telemetry lines, a background sender started by the caller)."""

    enable_buffering = _accepted_noop
    disable_buffering = True  # datadog's attribute (a property there, not a method), default as in datadog
    enable_aggregation = disable_aggregation = _accepted_noop
    enable_background_sender = disable_background_sender = _accepted_noop
    enable_telemetry = disable_telemetry = _accepted_noop
    pre_fork = post_fork_parent = post_fork_child = _accepted_noop
    set_socket_timeout = _accepted_noop
