"""The web console: what ran, what will run, each run's record, reply and log, and the actions.

Served by the operator on the archive's listeners under the archive API group (routes.py), so
the API server authenticates every request and the operator authorizes it per namespace exactly
as for the archive API (access.py). Modules: `queries` (aggregations over the archive store),
`jobs` (the operator's view of the jobs, specs in words), `upcoming` (due slots from the
scheduler's own schedule math), `charts` (SVG drawn on the server), `routes` (pages), `serve`
(what the operator hands the archive service to mount the console on its listeners), and
`templates/` + `static/` (Jinja2 pages, htmx, one small script, one stylesheet).
"""

from .routes import Console, console_base, page_url
from .serve import mount_for

__all__ = ["Console", "console_base", "mount_for", "page_url"]
