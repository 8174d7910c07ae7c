"""Vendor command statuses -> one state class each: ``pending``, ``done``, ``canceled`` or
``errored``. The poll outcomes of the same names come from here, and so does verify-after-cancel.

Windows statuses are SyncML status names (the reference page lists all 65); a status that means
the device will try again counts as ``pending``. The table is the documentation: the README
prints it, and a test fails when a status name of the reference page has no class.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class StateClass(StrEnum):
    PENDING = "pending"
    DONE = "done"
    CANCELED = "canceled"
    ERRORED = "errored"


P, D, C, E = StateClass.PENDING, StateClass.DONE, StateClass.CANCELED, StateClass.ERRORED

WINDOWS: dict[str, StateClass] = {
    # queued or in progress, or the device will try again
    "Pending": P,
    "Awaiting": P,
    "ChunkedItemAcceptedAndBuffered": P,  # 213: more chunks to come
    "RequestFailRetryAfterSomeTime": P,  # 417: retry later
    "TemporaryOverloadingOrMaintenanceError": P,  # 503: retry later
    # executed
    "Acknowledged": D,  # 200
    "DeleteWithoutArchive": D,  # 210
    "ItemNotDeleted": D,  # 211: the item to delete was not there
    "AuthenticationAccepted": D,  # 212
    "ConflictDetectedResolvedServerCommandWinning": D,  # 419: the server's command won
    # canceled
    "Cancel": C,
    "OperationCanceled": C,  # 214
    "CommandNotExecutedUserCanceled": C,  # 215
    "SyncMlCommandCanceled": C,  # 514
    # failed on the device (or never executed there)
    "UnexpectedError": E,
    "MethodNotAllowed": E,
    "Unknown": E,
    "Unauthorized": E,
    "CommandFormatError": E,
    "CommandNotFound": E,
    "NotSupported": E,
    "CommandInsideAtomicElementAndAtomicFailed": E,
    "RequestedTargetIsOneOfMultipleAlternativesRequestedTarget": E,
    "RequestedTargetHasANewURI": E,
    "RequestedTargetMovedToADifferentURI": E,
    "RequestedTargetCanBeFoundAtAnotherURI": E,
    "RequestedSyncMLCommandNotExecutedOnTarget": E,
    "RequestedTargetMustBeAccessedThroughSpecifiedProxyURI": E,
    "PaymentIsNeeded": E,
    "FailedByRecipientUnderstoodTheCommand": E,
    "InvalidOriginatorAuthentication": E,
    "ExpectedMessageNotReceivedInRequiredPeriodOfTime": E,
    "UpdateConflictBetweenClientAndServerVersion": E,
    "TargetNotLongerAvailable": E,
    "CommandMustBeAccompaniedByByteSizeOrLength": E,
    "IncompleteOrIncorrectFormed": E,
    "RequestItemTooLong": E,
    "TargetURIIsTooLong": E,
    "UnsupportedMediaType": E,
    "ByteSizeTooBig": E,
    "PutOrAddCommandFailedBecauseTargetAlreadyExists": E,
    "NoMoreStorageSpaceForRemainingSynchronizationData": E,
    "SpecifiedSearchGrammarWasNotKnown": E,
    "CGIScriptingInLocURIWasIncorrectlyFormed": E,
    "SoftDeletedItemAlreadyHardDeleted": E,
    "ChunkedObjectReceivedByIncorrectSizeDeclared": E,
    "InvalidAdequateAccessControlPermissions": E,
    "PartialItemNotAccepted": E,
    "ParentCanNotBeDeletedSinceItContainsChildren": E,
    "MoveFailed": E,
    "CommandNotSupported": E,
    "GatewayOrProxyError": E,
    "GatewayOrProxyTimeout": E,
    "InvalidSyncMLDTDVersion": E,
    "ApplicationErrorWhileProcessingTheRequest": E,
    "ErrorCausedAllSyncMKCommandsFail": E,
    "ErrorARefreshSynchronizationIsNeeded": E,
    "ReservedForFutureUse": E,
    "ErrorInRecipientDataStore": E,
    "SevereErrorInServer": E,
    "ApplicationErrorDuringSynchronization": E,
    "SyncMLSynchronizationVersionNotSupported": E,
    "AtomicRollbackFailed": E,
    "AtomicResponseTooLarge": E,
    "MalformedSyntax": E,
}

APPLE: dict[str, StateClass] = {
    "Pending": P,
    "Retrying": P,
    "Tried": P,
    "NotNow": P,  # the device was busy and will be asked again
    "Acknowledged": D,
    "Error": E,
    "CommandFormatError": E,
    "Canceled": C,
}

ANDROID: dict[str, StateClass] = {
    "PENDING": P,
    "DONE": D,
    "FAILED": E,
    "CANCELLED": C,
    "CANCELED": C,
}

# EnOS command state numbers (../shared/apis/README.md).
ENOS: dict[int, StateClass] = {
    1: P,  # created: cached, waiting for the device
    4: P,  # released to the device
    5: P,  # sent, no response yet
    2: C,  # canceled
    3: E,  # expired before it was delivered
    6: E,  # failed
    7: E,  # response timed out
}
ENOS_NAMES = {1: "created", 2: "canceled", 3: "expired", 4: "released", 5: "sent", 6: "failed",
              7: "response timed out"}  # fmt: skip


def classify(table: dict[str, StateClass], status: str | None) -> StateClass:
    """A vendor status's class; an unknown status counts as ``pending`` (still to watch), and
    the report keeps the vendor's own string."""
    return table.get(status or "", P)


def batch_class(classes: Iterable[StateClass]) -> StateClass:
    """A Windows batch: the class of its actions when they agree; otherwise ``pending`` while
    any action is pending, else ``errored`` if any errored, else ``canceled`` if any canceled,
    else ``done``."""
    seen = set(classes)
    if len(seen) == 1:
        return seen.pop()
    for cls in (P, E, C):
        if cls in seen:
            return cls
    return D
