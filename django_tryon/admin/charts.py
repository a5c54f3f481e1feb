"""The status overview's pictures of the last 7 days, drawn on the server as inline SVG.

Two charts, each from one aggregate query: jobs created per hour, one row per
status (small multiples: each row is labelled, so no colour is needed to tell
them apart), and the average time to result per hour. No build step and no
script: the SVG is text in the page. Every bar carries a ``<title>`` (the
browser's tooltip, read by screen readers) and ``data-*`` attributes with its
numbers; each chart has a ``<title>`` and a ``<desc>`` that say in words what
it shows, so the picture has a text alternative.

Hours are UTC hours (the database truncates timestamps to the hour in UTC, the
same on every backend); their labels are in the site's time zone.
"""

from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as dt_timezone

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import JobStatus, TryOnJob
from .display import duration

HOURS = 7 * 24
# Geometry of both charts, in SVG user units (the SVG scales to its container).
LABEL_WIDTH = 130
BAR_STEP = 4  # one hour
PLOT_WIDTH = HOURS * BAR_STEP
WIDTH = LABEL_WIDTH + PLOT_WIDTH + 10
ROW_HEIGHT = 30
ROW_GAP = 8
AXIS_HEIGHT = 22
DURATION_HEIGHT = 120


def first_hour(now):
    """The start of the first of the :data:`HOURS` hours that end with ``now``'s hour."""
    current = now.astimezone(dt_timezone.utc).replace(minute=0, second=0, microsecond=0)
    return current - timedelta(hours=HOURS - 1)


def hours_since(start):
    return [start + timedelta(hours=i) for i in range(HOURS)]


# Data: one aggregate query per chart ---------------------------------------------------


@dataclass(frozen=True)
class StatusHours:
    """Jobs created per hour and status: ``counts[status][i]`` for hour ``hours[i]``."""

    hours: list
    counts: dict

    def total(self, status=None):
        rows = [self.counts[status]] if status else self.counts.values()
        return sum(sum(row) for row in rows)

    @property
    def busiest(self):
        """``(hour, jobs)`` of the hour with most jobs, ``None`` when there are none."""
        per_hour = [sum(row[i] for row in self.counts.values()) for i in range(len(self.hours))]
        if not any(per_hour):
            return None
        index = max(range(len(per_hour)), key=per_hour.__getitem__)
        return self.hours[index], per_hour[index]


def status_hours(now=None, jobs=None):
    """Jobs created in the last 7 days, counted per hour and status, in one query."""
    jobs = TryOnJob.objects.all() if jobs is None else jobs
    start = first_hour(now or timezone.now())
    hours = hours_since(start)
    index = {hour: i for i, hour in enumerate(hours)}
    counts = {status: [0] * HOURS for status in JobStatus.values}
    rows = (
        jobs.filter(created_at__gte=start)
        .annotate(hour=TruncHour("created_at", tzinfo=dt_timezone.utc))
        .order_by()
        .values_list("hour", "status")
        .annotate(n=Count("pk"))
    )
    for hour, status, n in rows:
        position = index.get(hour.astimezone(dt_timezone.utc))
        if position is not None and status in counts:
            counts[status][position] += n
    return StatusHours(hours=hours, counts=counts)


@dataclass(frozen=True)
class ResultHour:
    results: int
    average: timedelta
    longest: timedelta


@dataclass(frozen=True)
class DurationHours:
    """Time from submission to stored result, per hour the results were stored."""

    hours: list
    values: list  # ResultHour or None, per hour

    @property
    def results(self):
        return sum(value.results for value in self.values if value)

    @property
    def average(self):
        """The average over every result of the 7 days, ``None`` without results."""
        if not self.results:
            return None
        total = sum((v.average * v.results for v in self.values if v), timedelta())
        return total / self.results

    @property
    def longest(self):
        return max((value.longest for value in self.values if value), default=None)


def duration_hours(now=None, jobs=None):
    """Average and longest time to result per hour of the last 7 days, in one query."""
    jobs = TryOnJob.objects.all() if jobs is None else jobs
    start = first_hour(now or timezone.now())
    hours = hours_since(start)
    index = {hour: i for i, hour in enumerate(hours)}
    took = ExpressionWrapper(F("finished_at") - F("submitted_at"), output_field=DurationField())
    rows = (
        jobs.filter(
            status=JobStatus.SUCCEEDED,
            finished_at__gte=start,
            submitted_at__isnull=False,
        )
        .annotate(hour=TruncHour("finished_at", tzinfo=dt_timezone.utc))
        .order_by()
        .values("hour")
        .annotate(n=Count("pk"), average=Avg(took), longest=Max(took))
    )
    values: list[ResultHour | None] = [None] * HOURS
    for row in rows:
        position = index.get(row["hour"].astimezone(dt_timezone.utc))
        if position is not None:
            values[position] = ResultHour(row["n"], row["average"], row["longest"])
    return DurationHours(hours=hours, values=values)


# Drawing ---------------------------------------------------------------------------------


def _coordinate(value):
    """A coordinate with at most two decimals: ``12.33``, ``30``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _hour_label(hour):
    """``Tue 1 Dec, 14:00`` in the site's time zone and language."""
    local = timezone.localtime(hour)
    return f"{date_format(local, 'D j M')}, {date_format(local, 'H:i')}"


def _day_axis(hours, top):
    """Ticks at each local midnight, labelled with the day, under a plot whose bottom is ``top``."""
    parts = []
    for i, hour in enumerate(hours):
        local = timezone.localtime(hour)
        # The first hour is labelled too, unless the next day's label would overlap it.
        if local.hour != 0 and (i != 0 or local.hour > 12):
            continue
        x = LABEL_WIDTH + i * BAR_STEP
        parts.append(
            format_html(
                '<line class="tryon-chart-tick" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="tryon-chart-axis" x="{}" y="{}">{}</text>',
                x,
                top - 4,
                x,
                top + 4,
                x + 2,
                top + 16,
                date_format(local, "D j"),
            )
        )
    return mark_safe("".join(parts))


def _svg(chart_id, height, title, description, body, css_class):
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="tryon-chart {}" id="{}" '
        'viewBox="0 0 {} {}" width="100%" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        css_class,
        chart_id,
        WIDTH,
        height,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        body,
    )


def jobs_chart(data: StatusHours) -> SafeString:
    """Small multiples: one labelled row of hourly bars per status, on one scale."""
    labels = dict(JobStatus.choices)
    peak = max((max(row) for row in data.counts.values()), default=0) or 1
    rows = []
    for r, status in enumerate(JobStatus.values):
        top = r * (ROW_HEIGHT + ROW_GAP)
        baseline = top + ROW_HEIGHT
        bars = format_html_join(
            "",
            '<rect class="tryon-bar" data-status="{}" data-hour="{}" data-count="{}" '
            'x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            (
                (
                    status,
                    hour.isoformat(),
                    count,
                    LABEL_WIDTH + i * BAR_STEP,
                    _coordinate(baseline - count / peak * ROW_HEIGHT),
                    BAR_STEP - 1,
                    _coordinate(count / peak * ROW_HEIGHT),
                    _("%(hour)s: %(count)d %(status)s")
                    % {"hour": _hour_label(hour), "count": count, "status": labels[status]},
                )
                for i, (hour, count) in enumerate(zip(data.hours, data.counts[status], strict=True))
                if count
            ),
        )
        rows.append(
            format_html(
                '<g class="tryon-chart-row tryon-status-row-{}" data-status="{}" data-total="{}">'
                '<text class="tryon-chart-label" x="0" y="{}">{} ({})</text>'
                '<line class="tryon-chart-baseline" x1="{}" y1="{}" x2="{}" y2="{}"/>{}</g>',
                status,
                status,
                data.total(status),
                baseline - 8,
                labels[status],
                data.total(status),
                LABEL_WIDTH,
                baseline,
                LABEL_WIDTH + PLOT_WIDTH,
                baseline,
                bars,
            )
        )
    plot_bottom = len(JobStatus.values) * (ROW_HEIGHT + ROW_GAP)
    scale = format_html(
        '<text class="tryon-chart-axis" x="0" y="{}">{}</text>',
        plot_bottom + 16,
        ngettext("full row: %(peak)d job", "full row: %(peak)d jobs", peak) % {"peak": peak},
    )
    body = mark_safe("".join(rows) + scale + _day_axis(data.hours, plot_bottom))
    return _svg(
        "tryon-chart-jobs",
        plot_bottom + AXIS_HEIGHT,
        _("Jobs created per hour, by status, over the last 7 days"),
        _jobs_description(data, peak),
        body,
        "tryon-chart-jobs",
    )


def _jobs_description(data, peak):
    total = data.total()
    if not total:
        return _("No job was created in the last 7 days.")
    labels = dict(JobStatus.choices)
    by_status = ", ".join(
        f"{labels[status]}: {data.total(status)}"
        for status in JobStatus.values
        if data.total(status)
    )
    hour, jobs = data.busiest
    return ngettext(
        "%(total)d job from %(start)s to %(end)s (%(by_status)s). The busiest hour, "
        "%(busiest)s, had %(busiest_count)d. Every row uses the same scale: a full bar "
        "is %(peak)d jobs.",
        "%(total)d jobs from %(start)s to %(end)s (%(by_status)s). The busiest hour, "
        "%(busiest)s, had %(busiest_count)d. Every row uses the same scale: a full bar "
        "is %(peak)d jobs.",
        total,
    ) % {
        "total": total,
        "start": _hour_label(data.hours[0]),
        "end": _hour_label(data.hours[-1] + timedelta(hours=1)),
        "by_status": by_status,
        "busiest": _hour_label(hour),
        "busiest_count": jobs,
        "peak": peak,
    }


def durations_chart(data: DurationHours) -> SafeString:
    """Hourly bars of the average time to result, each titled with its count and longest."""
    peak = max((v.average.total_seconds() for v in data.values if v), default=0) or 1
    baseline = DURATION_HEIGHT
    bars = format_html_join(
        "",
        '<rect class="tryon-bar" data-hour="{}" data-results="{}" data-average-seconds="{}" '
        'data-longest-seconds="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (
                hour.isoformat(),
                value.results,
                round(value.average.total_seconds(), 3),
                round(value.longest.total_seconds(), 3),
                LABEL_WIDTH + i * BAR_STEP,
                _coordinate(baseline - value.average.total_seconds() / peak * DURATION_HEIGHT),
                BAR_STEP - 1,
                _coordinate(value.average.total_seconds() / peak * DURATION_HEIGHT),
                ngettext(
                    "%(hour)s: %(count)d result, average %(average)s, longest %(longest)s",
                    "%(hour)s: %(count)d results, average %(average)s, longest %(longest)s",
                    value.results,
                )
                % {
                    "hour": _hour_label(hour),
                    "count": value.results,
                    "average": duration(value.average),
                    "longest": duration(value.longest),
                },
            )
            for i, (hour, value) in enumerate(zip(data.hours, data.values, strict=True))
            if value
        ),
    )
    scale = format_html(
        '<text class="tryon-chart-label" x="0" y="14">{}</text>'
        '<text class="tryon-chart-label" x="0" y="{}">0 s</text>'
        '<line class="tryon-chart-baseline" x1="{}" y1="{}" x2="{}" y2="{}"/>',
        duration(timedelta(seconds=peak)),
        baseline,
        LABEL_WIDTH,
        baseline,
        LABEL_WIDTH + PLOT_WIDTH,
        baseline,
    )
    body = mark_safe(scale + bars + _day_axis(data.hours, baseline))
    return _svg(
        "tryon-chart-durations",
        baseline + AXIS_HEIGHT,
        _("Average time to result per hour, over the last 7 days"),
        _durations_description(data),
        body,
        "tryon-chart-durations",
    )


def _durations_description(data):
    if not data.results:
        return _("No result was stored in the last 7 days.")
    return ngettext(
        "%(count)d result stored in the last 7 days, %(average)s on average from submission "
        "to stored picture; the longest took %(longest)s. Each bar is one hour's average.",
        "%(count)d results stored in the last 7 days, %(average)s on average from submission "
        "to stored picture; the longest took %(longest)s. Each bar is one hour's average.",
        data.results,
    ) % {
        "count": data.results,
        "average": duration(data.average),
        "longest": duration(data.longest),
    }


def charts(now=None):
    """Both charts of the overview, ready for the template."""
    now = now or timezone.now()
    return {
        "jobs": jobs_chart(status_hours(now)),
        "durations": durations_chart(duration_hours(now)),
    }
