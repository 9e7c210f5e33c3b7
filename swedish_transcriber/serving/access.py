"""Who may use the review page: a reviewer who presents the server's review token.

The review page plays training clips and writes the decisions file that the next ``dvc
repro`` trains on, so on a server others can reach it must not be open to every visitor.
It is off unless params ``review.page.enabled`` turns it on, and then a reviewer types the
review token. The token is a secret, so it is never a param (params are committed): it comes
from the environment (:data:`TOKEN_ENV`) or from ``review_token`` in Streamlit's
``.streamlit/secrets.toml`` (git-ignored), is compared in constant time, and is never shown
or logged. A single shared token fits a single team's server; a page open to many people
would use ``st.login`` with an OpenID Connect provider instead (docs/review.md).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping

TOKEN_ENV = "SWEDISH_TRANSCRIBER_REVIEW_TOKEN"
SECRETS_KEY = "review_token"  # in .streamlit/secrets.toml
MIN_TOKEN_CHARS = 16  # python -c "import secrets; print(secrets.token_urlsafe(32))" gives 43
HOW_TO_SET = (
    f"set {TOKEN_ENV} in the server's environment, or {SECRETS_KEY} in "
    f".streamlit/secrets.toml (git-ignored), e.g. to the output of "
    f'`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
)


class AccessError(ValueError):
    """The server's review token is missing or unusable; the message says how to set one
    (it never holds the token)."""


def configured_token(
    environ: Mapping[str, str] | None = None,
    secrets: Callable[[], Mapping[str, object]] | None = None,
) -> str:
    """The server's review token: ``$SWEDISH_TRANSCRIBER_REVIEW_TOKEN``, else ``review_token``
    of ``secrets()`` (the page passes ``st.secrets``; a missing secrets file counts as none).

    :class:`AccessError` when neither is set, or when the token is too short to be a secret.
    """
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if not token and secrets is not None:
        try:
            value = secrets().get(SECRETS_KEY, "")
        except Exception:  # no secrets.toml, or one that does not parse: no token from it
            value = ""
        token = str(value).strip() if isinstance(value, str) else ""
    if not token:
        raise AccessError(
            f"The review page is on (params review.page.enabled), but this server has no "
            f"review token: {HOW_TO_SET}."
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise AccessError(
            f"The server's review token is shorter than {MIN_TOKEN_CHARS} characters, too "
            f"short to be a secret: {HOW_TO_SET}."
        )
    return token


def token_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is the review token; constant time, so a guess learns nothing from
    how long the comparison takes."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))
