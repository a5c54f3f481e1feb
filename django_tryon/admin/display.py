"""Small HTML pieces the try-on admin pages share: thumbnails, durations, badges."""

from django.utils.html import format_html
from django.utils.translation import gettext as _

#: What an empty cell shows (the admin's own default).
EMPTY = "-"


def thumbnail(fieldfile, *, alt="", size=64, missing=EMPTY):
    """A lazy-loaded thumbnail of a stored image, linked to the image itself.

    The stored image is scaled by the browser: the app keeps no resized
    copies, and the images it stores are already bounded (4096 px, 3 MB).
    """
    if not fieldfile:
        return missing
    try:
        url = fieldfile.url
    except (ValueError, NotImplementedError):
        return missing
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">'
        '<img src="{}" alt="{}" class="tryon-thumb" loading="lazy" '
        'style="max-width:{}px;max-height:{}px"></a>',
        url,
        url,
        alt,
        size,
        size,
    )


def duration(value):
    """``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``; the empty mark for ``None``."""
    if value is None:
        return EMPTY
    seconds = value.total_seconds()
    if seconds < 60:
        return _("%(seconds).1f s") % {"seconds": seconds}
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}


def status_badge(job):
    """The job's status as a coloured label (colours in ``tryon_admin.css``)."""
    return format_html(
        '<span class="tryon-status tryon-status-{}">{}</span>',
        job.status,
        job.get_status_display(),
    )
