"""SVG charts drawn on the server: the timeline, a job's duration chart, the strip of recent runs.

Pure functions from figures to markup. Every text that comes from a job or a run (names,
reasons) goes through `escape`; nothing here is script. Colours come from CSS classes
(`r-succeeded`, `r-failed`, `r-notrun`), so the page's stylesheet is the one palette.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from .queries import Bucket, StripRun

#: Timeline geometry (viewBox units; the SVG scales to the page width).
GUTTER = 220
PLOT = 960
ROW = 22
HEAD = 26
BAR = 14


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def result_class(result: str) -> str:
    if result == "Succeeded" or result == "succeeded":
        return "r-succeeded"
    if result in ("Failed", "TimedOut", "failed"):
        return "r-failed"
    if result in ("Running", "running"):
        return "r-running"
    return "r-notrun"


def _x(when: datetime, start: datetime, end: datetime) -> float:
    frac = (when - start) / (end - start)
    return GUTTER + max(0.0, min(1.0, frac)) * PLOT


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    span = end - start
    steps = [timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)]
    step = next((s for s in steps if span / s <= 12), steps[-1])
    seconds = int(step.total_seconds())
    first = datetime.fromtimestamp((int(start.timestamp()) // seconds + 1) * seconds, tz=start.tzinfo)
    out = []
    t = first
    while t < end:
        out.append(t)
        t += step
    return out


def _tick_label(t: datetime, span: timedelta) -> str:
    return t.strftime("%H:%M") if span <= timedelta(days=1) else t.strftime("%a %d %H:%M")


def timeline_svg(
    rows: Sequence[tuple[str, str]],
    buckets: Sequence[Bucket],
    upcoming: dict[tuple[str, str], tuple[list[datetime], bool]],
    start: datetime,
    end: datetime,
    now: datetime,
    job_href: Callable[[str, str], str],
    run_href: Callable[[str, str], str],
) -> Markup:
    """One row per (namespace, job): bars of past attempts, ticks of upcoming slots, a line at now."""
    height = HEAD + ROW * max(1, len(rows)) + 4
    span = end - start
    parts: list[str] = [
        f'<svg class="timeline" viewBox="0 0 {GUTTER + PLOT + 10} {height}" width="100%" '
        f'role="img" aria-label="runs from {iso(start)} to {iso(end)}" data-start="{iso(start)}" '
        f'data-end="{iso(end)}" data-gutter="{GUTTER}" data-plot="{PLOT}">'
    ]
    for t in _ticks(start, end):
        x = _x(t, start, end)
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{HEAD - 6}" x2="{x:.1f}" y2="{height}"/>')
        parts.append(f'<text class="ticklabel" x="{x:.1f}" y="{HEAD - 10}">{escape(_tick_label(t, span))}</text>')
    index = {key: i for i, key in enumerate(rows)}
    for i, (ns, job) in enumerate(rows):
        y = HEAD + i * ROW
        label = f"{ns}/{job}" if len({r[0] for r in rows}) > 1 else job
        parts.append(
            f'<a href="{escape(job_href(ns, job))}"><text class="joblabel" x="4" y="{y + ROW / 2 + 4:.1f}">'
            f"{escape(label[:34])}</text></a>"
        )
        if i % 2:
            parts.append(f'<rect class="stripe" x="{GUTTER}" y="{y}" width="{PLOT}" height="{ROW}"/>')
    for b in buckets:
        pos = index.get((b.namespace, b.job))
        if pos is None:
            continue
        top = HEAD + pos * ROW + (ROW - BAR) / 2
        x0, x1 = _x(b.start, start, end), _x(b.end, start, end)
        classes = ["bar", result_class(b.result)]
        if b.retries:
            classes.append("retry")
        if b.dependency:
            classes.append("dep")
        what = (
            f"{b.trigger} {b.start:%m-%d %H:%M:%S} → {b.end:%H:%M:%S}"
            if b.count == 1
            else f"{b.count} attempts {iso(b.start)} → {iso(b.end)}: {b.succeeded} succeeded, "
            f"{b.failed} failed, {b.not_run} not run, {b.retries} retries"
        )
        rect = (
            f'<rect class="{" ".join(classes)}" x="{x0:.2f}" y="{top:.1f}" width="{max(1.5, x1 - x0):.2f}" '
            f'height="{BAR}" data-job="{escape(b.job)}" '
            f'data-start="{iso(b.start)}" data-end="{iso(b.end)}" data-count="{b.count}"'
            + (f' data-run="{escape(b.run)}"' if b.run else "")
            + f"><title>{escape(what)}</title></rect>"
        )
        if b.dependency and b.count == 1:
            rect += f'<circle class="depmark" cx="{x0:.2f}" cy="{top - 1:.1f}" r="2.5"/>'
        parts.append(f'<a href="{escape(run_href(b.namespace, b.run))}">{rect}</a>' if b.run else rect)
    for (ns, job), (slots, more) in upcoming.items():
        pos = index.get((ns, job))
        if pos is None:
            continue
        mid = HEAD + pos * ROW + ROW / 2
        seen: set[int] = set()
        for slot in slots:
            x = _x(slot, start, end)
            if int(x * 2) in seen:
                continue
            seen.add(int(x * 2))
            parts.append(
                f'<line class="slot" x1="{x:.2f}" y1="{mid - 6:.1f}" x2="{x:.2f}" y2="{mid + 6:.1f}" '
                f'data-job="{escape(job)}" data-time="{iso(slot)}"><title>due {iso(slot)}</title></line>'
            )
        if more:
            parts.append(f'<text class="more" x="{GUTTER + PLOT - 4}" y="{mid + 4:.1f}">…</text>')
    if start <= now <= end:
        x = _x(now, start, end)
        parts.append(
            f'<line class="now" x1="{x:.1f}" y1="{HEAD - 6}" x2="{x:.1f}" y2="{height}" data-time="{iso(now)}"/>'
        )
        parts.append(f'<text class="nowlabel" x="{x + 3:.1f}" y="{HEAD - 10}">now</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def strip_svg(runs: Sequence[StripRun], href: str, slots: int = 20) -> Markup:
    """The last runs, oldest left, a square each, coloured by result; the strip links to the job.

    Kept small (it is on every overview row): one link, and each square's title only its time and result.
    """
    size, gap = 9, 2
    width = slots * (size + gap)
    parts = [
        f'<a href="{escape(href)}"><svg class="strip" viewBox="0 0 {width} {size}" width="{width}" height="{size}">'
    ]
    offset = slots - len(runs)
    for i, r in enumerate(runs[-slots:]):
        x = (offset + i) * (size + gap)
        retried = f", {r.attempts} attempts" if r.attempts > 1 else ""
        parts.append(
            f'<rect class="{result_class(r.result)}" x="{x}" width="{size}" height="{size}">'
            f"<title>{r.scheduled:%m-%d %H:%M} {escape(r.result)}{retried}</title></rect>"
        )
    parts.append("</svg></a>")
    return Markup("".join(parts))


def duration_svg(points: Sequence[tuple[datetime, float, str]], start: datetime, end: datetime) -> Markup:
    """Each attempt's duration over time (one dot each, coloured by result), with the slowest as the scale."""
    width, height, left, bottom = 960, 180, 52, 20
    if not points:
        return Markup('<p class="empty">No archived durations in this window.</p>')
    top = max(d for _, d, _ in points) or 1.0
    parts = [f'<svg class="durations" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="durations of {len(points)} attempts">']  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        y = (height - bottom) * (1 - frac) + 4
        parts.append(f'<line class="tick" x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}"/>')
        parts.append(f'<text class="ticklabel" x="2" y="{y + 4:.1f}">{_secs(top * frac)}</text>')
    span = (end - start).total_seconds() or 1.0
    for when, duration, result in points:
        x = left + max(0.0, min(1.0, (when - start).total_seconds() / span)) * (width - left - 6)
        y = (height - bottom) * (1 - duration / top) + 4
        parts.append(
            f'<circle class="{result_class(result)}" cx="{x:.1f}" cy="{y:.1f}" r="2.6" data-seconds="{duration:g}">'
            f"<title>{iso(when)}: {_secs(duration)} ({escape(result)})</title></circle>"
        )
    parts.append(f'<text class="ticklabel" x="{left}" y="{height - 4}">{iso(start)}</text>')
    parts.append(f'<text class="ticklabel end" x="{width - 4}" y="{height - 4}">{iso(end)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _secs(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"
