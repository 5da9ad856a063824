"""How a client trusts a device's HTTPS certificate: the system's CAs (verify=True), a CA file (a path), or a
pinned SHA-256 fingerprint ("sha256:AB:CD:…", what `opentap config init` prints for its self-signed pair).

A pin is checked before anything is sent: the device's certificate is fetched on a connection that carries
no request, compared with the pin, and only then made the one certificate the real connection trusts. A
man in the middle would need the device's private key, and a wrong pin sends no token anywhere."""

from __future__ import annotations

import hashlib
import ssl

PIN_PREFIX = "sha256:"


class UntrustedDevice(ValueError):
    """The device's certificate is not the pinned one."""


def fingerprint_der(der: bytes) -> str:
    """SHA-256 over the DER certificate, as AB:CD:… (the form browsers and `openssl x509 -fingerprint` show)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    """'sha256:ab:cd…', 'AB CD…' or 'abcd…' -> 'AB:CD:…'; ValueError for anything that is not 32 bytes of hex."""
    raw = text.strip()
    if raw.lower().startswith(PIN_PREFIX):
        raw = raw[len(PIN_PREFIX):]
    digits = "".join(c for c in raw if c not in ": ").upper()
    if len(digits) != 64 or any(c not in "0123456789ABCDEF" for c in digits):
        raise ValueError(f"not a SHA-256 fingerprint (64 hex digits): {text!r}")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))


def is_pin(verify: object) -> bool:
    return isinstance(verify, str) and verify.lower().startswith(PIN_PREFIX)


def context(verify: bool | str, host: str, port: int, timeout: float = 5.0) -> bool | ssl.SSLContext:
    """What httpx's and urllib's `verify`/`context` take for this device."""
    if isinstance(verify, bool):
        return verify
    if not is_pin(verify):
        return ssl.create_default_context(cafile=verify)
    wanted = normalize_fingerprint(verify)
    pem = ssl.get_server_certificate((host, port), timeout=timeout)
    seen = fingerprint_der(ssl.PEM_cert_to_DER_cert(pem))
    if seen != wanted:
        raise UntrustedDevice(f"the device at {host}:{port} shows a certificate with SHA-256 {seen}, not the pinned "
                              f"{wanted}: nothing was sent to it")
    ctx = ssl.create_default_context(cadata=pem)
    ctx.check_hostname = False  # the pin names the certificate itself; host names do not matter
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # trust the leaf itself, not a CA above it
    return ctx
