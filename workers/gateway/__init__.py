"""The gateway: applications and web pages post events over HTTP, the gateway puts them on the input
topics and answers 202 only once the broker has acknowledged every one (`hitl-workers run gateway`).

`app` holds the routes, `intake` turns a request body into validated events, `publishing` produces
them, `auth` checks bearer tokens, `metrics` counts requests, `static` serves the widget and the
demo page, `server` binds the port and runs uvicorn.
"""
