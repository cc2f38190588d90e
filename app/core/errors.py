"""Domain errors: raised by the service layer, rendered by REST and GraphQL alike.

Each carries the code and message of the contract; the edges only choose the wire shape.
"""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    code: str = "INTERNAL_ERROR"
    message: str = "Internal server error"
    summary: str = "An unexpected error occurred"  # REST top-level "message"
    status: int = 500

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    message = "Invalid request parameters"
    summary = "Request validation failed"
    status = 400

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    message = "Authentication required"
    summary = "Authentication required"
    status = 401


class ClientNotFound(DomainError):
    code = "NOT_FOUND"
    message = "Client not found"
    summary = "The requested client does not exist"
    status = 404

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.client_id = client_id


class DuplicateRfc(DomainError):
    code = "DUPLICATE_RFC"
    message = "A client with this RFC already exists"
    summary = "RFC must be unique"
    status = 409

    def __init__(self, rfc: str, existing_client_id: str) -> None:
        super().__init__()
        self.rfc = rfc
        self.existing_client_id = existing_client_id


class ClientInUse(DomainError):
    code = "CLIENT_IN_USE"
    message = "Client has associated invoices or payments"
    summary = "Client cannot be deleted"
    status = 409

    def __init__(self, invoice_count: int, payment_count: int) -> None:
        super().__init__()
        self.invoice_count = invoice_count
        self.payment_count = payment_count


class PreconditionFailed(DomainError):
    code = "PRECONDITION_FAILED"
    message = "The client was changed since it was read"
    summary = "Precondition failed"
    status = 412

    def __init__(self, client_id: str, current_updated_at: datetime) -> None:
        super().__init__()
        self.client_id = client_id
        self.current_updated_at = current_updated_at


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    message = "The database is unavailable"
    summary = "Service temporarily unavailable"
    status = 503


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    message = "Content-Type must be application/json or application/merge-patch+json"
    summary = "Unsupported media type"
    status = 415


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    message = "Too many requests for this API key"
    summary = "Rate limit exceeded"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class IdempotencyKeyInUse(DomainError):
    code = "IDEMPOTENCY_KEY_IN_USE"
    message = "A request with this idempotency key is still being processed"
    summary = "Retry after the first request completes"
    status = 409


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "This idempotency key was used with a different request"
    summary = "Idempotency keys cannot be reused with different parameters"
    status = 422


class CatalogNotFound(DomainError):
    code = "NOT_FOUND"
    message = "Catalog not found"
    summary = "The requested catalog does not exist"
    status = 404

    def __init__(self, catalog_id: str) -> None:
        super().__init__()
        self.catalog_id = catalog_id


class EventNotFound(DomainError):
    code = "NOT_FOUND"
    message = "Event not found"
    summary = "The requested event does not exist"
    status = 404

    def __init__(self, event_id: str) -> None:
        super().__init__()
        self.event_id = event_id


class WebhookNotFound(DomainError):
    code = "NOT_FOUND"
    message = "Webhook not found"
    summary = "The requested webhook does not exist"
    status = 404

    def __init__(self, webhook_id: str) -> None:
        super().__init__()
        self.webhook_id = webhook_id
