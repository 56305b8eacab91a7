"""Adapter: file transfers (ports.file_transfer.FileTransfer) for firmware images and log files.

`http` serves http/https with httpx (async, under trio through anyio); `ftp` serves ftp/ftps
with the standard library's ftplib in a worker thread (explicit FTPS: AUTH TLS, PROT P,
passive mode), aborted by closing its sockets when the caller is cancelled. `partfile` is what
both share: the `.part` file of a download (hash while writing, size and free-space checks,
resume bookkeeping, the atomic rename) and the URL helpers. bootstrap/compose.py joins the two
protocols into one FileTransfer by URL scheme.
"""
