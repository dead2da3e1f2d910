"""Integration tests: real httpd instances with mod_pyexec (pyhttpd.py)."""
