"""ASGI middlewares that guard every request before a route sees it (issue 15): cross-site requests
(``origin``), request sizes (``limits``), response security headers (``headers``)."""
