"""The HTTP API (FastAPI): ``/api/v1``, OpenAPI at ``/openapi.json``, bearer API keys with scopes,
errors as RFC 9457 problem details.

    app.py       create_app(services): the app, composed in one visible place
    keys.py      API keys: created with scopes, stored as salted hashes, checked per request
    problems.py  RFC 9457 problem details for every error
    routers/     one router per resource: quarantine, logs, queue
"""
