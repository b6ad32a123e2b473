"""The operator console: server-rendered pages at `/console/...` (and `/`), for a partner's staff in a browser.

Pages read through the same route functions and services as the JSON API, so what a person sees is what
another node or a script gets; forms post to the console, which calls the same code and redirects back
(post, redirect, get). Sign-in takes the operator token (or the audit token, for a read-only view) and keeps
a signed, HttpOnly, SameSite=Strict session cookie; every form carries the session's CSRF token.
"""
