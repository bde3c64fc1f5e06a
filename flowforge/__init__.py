"""The flowforge command and the embedded app that runs every service in one process."""

KEEP_ALIVE_SECONDS = 75
"""How long the server keeps an idle keep-alive connection open. Longer than its clients keep
one (httpx 5 s, nginx upstreams 60 s): when both sides wait equally long, a request sent in the
instant the server closes the connection ends "connection reset by peer". uvicorn's own
default is 5 s, httpx's too."""
