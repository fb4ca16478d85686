"""The one error tree of the app.

    KoopError                       500, anything we raise on purpose
    ├── BadRequestError             400, bad input from the client
    │   ├── InvalidParameterError   400, one named query parameter is wrong
    │   ├── RequestBodyError        400, a body too large, with files, or unreadable
    │   └── UnsupportedOperationError 400, an edit or other operation we do not offer
    ├── NotFoundError               404, no such service, layer or feature
    ├── QueryTimeoutError           504, a statement ran past KOOP['QUERY_TIMEOUT_SECONDS']
    ├── DatasetLoadingError         503, a first load still runs after KOOP['FETCH_WAIT_SECONDS']
    ├── OptionsError                    a dataset's options break the provider's schema
    └── ProviderError               502, a provider failed (status chosen by the provider)
        ├── SourceAccessError       403, a path outside the data directory
        │   └── SourceRefusedError  403, an address or URL refused by the fetch policy
        ├── SourceNotFoundError     404, the file or remote resource does not exist
        └── SourceError             502, the source failed or sent something unusable
            ├── SourceConnectError  502, no HTTP answer (DNS, refused, reset, TLS, silence)
            ├── SourceAuthError     502, the source refused our credentials (or wants some)
            ├── SourceRateLimitedError 503, the source limits our requests (HTTP 429)
            ├── SourceTimeoutError  504, the source did not answer in time
            ├── SourceTooLargeError 502, the source sent more than MAX_DOWNLOAD_BYTES
            └── SourceFormatError   502, the content could not be parsed
    AuthError                       token security (koop_app/auth), GeoServices codes of their own
    ├── TokenRequiredError      401, code 499: the resource is secured and no token came
    ├── InvalidTokenError       401, code 498: a token came but is bad, expired or revoked
    ├── PermissionDeniedError   403: the caller is known but may not read this resource
    ├── TokenGenerationError    400: generateToken refused (never says which credential)
    └── SignInThrottledError    429: too many failed sign-ins from this name and address

Each error carries an HTTP ``status``, a GeoServices ``code`` and two messages: ``message`` is
safe to show to clients, ``log_message`` may hold URLs and details and only goes to the log.
``admin_message`` is what the admin's "last error" shows: ``log_message``, except for network
failures, whose details (refused, reset, timed out) would turn the admin into a port scanner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class KoopError(Exception):
    """Base of all errors the app raises on purpose."""

    status: int = 500
    default_message: str = "Internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[str] = (),
        log_message: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = list(details)
        self.log_message = log_message or self.message
        super().__init__(self.log_message)

    #: Whether ``log_message`` may be shown in the admin (see ``admin_message``).
    admin_sees_details: bool = True

    @property
    def admin_message(self) -> str:
        return self.log_message if self.admin_sees_details else self.message

    @property
    def code(self) -> int:
        """The GeoServices error code: the HTTP status, as ArcGIS Server reports it."""
        return self.status


class BadRequestError(KoopError):
    status = 400
    default_message = "Unable to complete operation."


class InvalidParameterError(BadRequestError):
    """A named query parameter has a value that cannot be used."""

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter
        super().__init__(
            "Unable to complete operation.",
            details=[f"'{parameter}' parameter is invalid: {problem}"],
        )


class RequestBodyError(BadRequestError):
    """The request itself cannot be read: too large, a file part, an unknown charset."""


class UnsupportedOperationError(BadRequestError):
    """Edits and other operations of ArcGIS Server that a read-only FeatureServer lacks."""

    # ArcGIS Server's words for an operation the service does not offer.
    default_message = "Requested operation is not supported by this service."


class NotFoundError(KoopError):
    status = 404
    default_message = "Not found."


class QueryTimeoutError(KoopError):
    """A query was interrupted at KOOP['QUERY_TIMEOUT_SECONDS'].

    Code 504, as ArcGIS Online answers a query that runs past its time limit: clients show it
    as a timeout (narrow the query and retry), not as a bad parameter or a server fault.
    """

    status = 504
    default_message = "The query took too long and was stopped."


class DatasetLoadingError(KoopError):
    """The dataset's first load is still running after KOOP['FETCH_WAIT_SECONDS'].

    Code 503 ("Service Unavailable"), as ArcGIS Server answers while a service starts: clients
    show the message and may ask again; ``retry_after`` (seconds) becomes a Retry-After header.
    """

    status = 503
    default_message = "The dataset is loading; try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 5,
                 log_message: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, log_message=log_message)


class OptionsError(KoopError):
    """Options that break a provider's ``options_schema``; ``errors`` maps option to message."""

    status = 400
    default_message = "Invalid provider options."

    def __init__(self, errors: Mapping[str, str], provider: str = "") -> None:
        self.errors = dict(errors)
        details = [f"{key}: {msg}" for key, msg in self.errors.items()]
        prefix = f"{provider}: " if provider else ""
        super().__init__(f"{prefix}invalid options ({'; '.join(details)})", details=details)


class ProviderError(KoopError):
    """Raised by providers: ``ProviderError(404, "No such item")``.

    The status may be left out (``SourceTimeoutError("Too slow")``): the class's own is used,
    502 here: a failing plugin is a failing source to the client, code 500 stays for our bugs.
    """

    status = 502
    default_message = "The data source failed."

    def __init__(
        self,
        status: int | str | None = None,
        message: str | None = None,
        *,
        details: Sequence[str] = (),
        log_message: str | None = None,
    ) -> None:
        if isinstance(status, str):
            status, message = None, status
        if status is not None:
            self.status = status
        super().__init__(message, details=details, log_message=log_message)


class SourceAccessError(ProviderError):
    status = 403
    default_message = "The data source location is not allowed."


class SourceRefusedError(SourceAccessError):
    """The fetch policy refused the URL or an address it resolves to (``koop_app.net``)."""

    default_message = "The data source address is refused by policy."
    admin_sees_details = False


class SourceNotFoundError(ProviderError):
    status = 404
    default_message = "The data source was not found."


class SourceError(ProviderError):
    status = 502
    default_message = "The data source failed."


class SourceConnectError(SourceError):
    """No HTTP answer came back: every cause reads the same outside the log, on purpose."""

    default_message = "Could not connect to the data source."
    admin_sees_details = False


class SourceAuthError(SourceError):
    """The source answered 401/403: the dataset's credentials are missing, wrong or too weak.

    A 502 to the client: the fault is the server's configuration, not the client's token.
    """

    default_message = "The data source refused the credentials it was sent (or needs some)."


class SourceRateLimitedError(SourceError):
    status = 503
    default_message = "The data source is limiting our requests; try again later."


class SourceTimeoutError(SourceError):
    status = 504
    default_message = "The data source did not answer in time."


class SourceTooLargeError(SourceError):
    default_message = "The data source sent more data than allowed."


class SourceFormatError(SourceError):
    default_message = "The data source sent content that could not be read."


class AuthError(KoopError):
    """Token security errors: ArcGIS clients react to their GeoServices ``code`` (498/499)."""

    status = 401
    geoservices_code: int | None = None

    @property
    def code(self) -> int:
        return self.geoservices_code or self.status


class TokenRequiredError(AuthError):
    geoservices_code = 499
    default_message = "Token Required"


class InvalidTokenError(AuthError):
    geoservices_code = 498
    default_message = "Invalid Token"


class PermissionDeniedError(AuthError):
    status = 403
    default_message = ("You do not have permissions to access this resource or perform this "
                       "operation.")


class TokenGenerationError(AuthError):
    status = 400
    default_message = "Unable to generate token."


class SignInThrottledError(AuthError):
    """The login throttle locked this (username, address) pair: the admin's lockout, as JSON."""

    status = 429
    default_message = "Too many failed sign-ins. Try again later."
