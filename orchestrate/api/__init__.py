"""``orchestrate serve``: the JSON API, the live event stream and the web dashboard (issue 12).

Adapters only, like cli/: each route parses, calls the service the CLI calls, and
renders JSON (or HTML). Imported only by ``orchestrate serve`` (starlette, uvicorn, jinja2).
"""
