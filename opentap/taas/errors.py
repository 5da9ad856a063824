"""Neutron's error bodies: {"NeutronError": {"type": ..., "message": ..., "detail": ""}}, with its types,
status codes and words, because real OpenStack clients parse them."""

from __future__ import annotations


class NeutronError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def body(self) -> dict[str, dict[str, str]]:
        return {"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}}


def bad_request(message: str) -> NeutronError:
    return NeutronError(400, "HTTPBadRequest", message)


def invalid_input(attr: str, reason: str) -> NeutronError:
    return bad_request(f"Invalid input for {attr}. Reason: {reason}.")


def not_found(kind: str, message: str) -> NeutronError:
    return NeutronError(404, kind, message)


def policy(action: str) -> NeutronError:
    return NeutronError(403, "PolicyNotAuthorized", f"rule:{action} is disallowed by policy")


def port_not_owned() -> NeutronError:
    return NeutronError(403, "PortDoesNotBelongToTenant", "The specified port does not belong to the tenant")


def tap_service_not_owned() -> NeutronError:
    return NeutronError(403, "TapServiceNotBelongToTenant", "Specified Tap Service does not belong to the tenant")


def tap_ids_exhausted() -> NeutronError:
    return NeutronError(409, "TapServiceLimitReached", "Reached the maximum quota for Tap Services")


def mirror_slots_exhausted() -> NeutronError:
    return NeutronError(409, "TapFlowLimitReached", "Reached the maximum quota for Tap Flows")


def method_not_allowed() -> NeutronError:
    return NeutronError(405, "HTTPMethodNotAllowed", "The method is not allowed for this resource.")


def over_quota(resources: list[str]) -> NeutronError:
    """neutron-lib's OverQuota, which words the list as Python prints it: ['tap_flow']."""
    return NeutronError(409, "OverQuota", f"Quota exceeded for resources: {sorted(resources)}.")
