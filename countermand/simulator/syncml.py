"""The SyncML vocabulary of Applivery's Windows actions (applivery-windows-*.txt).

An action's ``status`` is one of ``WINDOWS_STATUSES`` (the names the reference pages list, in
their order) and its ``action`` one of ``WindowsActionName``. ``STATUS_CODES`` gives the SyncML
numeric status (OMA DS, the ``statusCode`` of an answered action) of the statuses the simulator
generates; a status without an entry has no code (nothing was answered yet, or none is known).
"""

from __future__ import annotations

from typing import Literal

WindowsActionName = Literal["Add", "Copy", "Delete", "Exec", "Get", "Replace"]

WINDOWS_STATUSES: tuple[str, ...] = (
    "Pending",
    "Awaiting",
    "UnexpectedError",
    "Acknowledged",
    "Cancel",
    "MethodNotAllowed",
    "Unknown",
    "Unauthorized",
    "CommandFormatError",
    "CommandNotFound",
    "NotSupported",
    "DeleteWithoutArchive",
    "ItemNotDeleted",
    "AuthenticationAccepted",
    "ChunkedItemAcceptedAndBuffered",
    "OperationCanceled",
    "CommandNotExecutedUserCanceled",
    "CommandInsideAtomicElementAndAtomicFailed",
    "RequestedTargetIsOneOfMultipleAlternativesRequestedTarget",
    "RequestedTargetHasANewURI",
    "RequestedTargetMovedToADifferentURI",
    "RequestedTargetCanBeFoundAtAnotherURI",
    "RequestedSyncMLCommandNotExecutedOnTarget",
    "RequestedTargetMustBeAccessedThroughSpecifiedProxyURI",
    "PaymentIsNeeded",
    "FailedByRecipientUnderstoodTheCommand",
    "InvalidOriginatorAuthentication",
    "ExpectedMessageNotReceivedInRequiredPeriodOfTime",
    "UpdateConflictBetweenClientAndServerVersion",
    "TargetNotLongerAvailable",
    "CommandMustBeAccompaniedByByteSizeOrLength",
    "IncompleteOrIncorrectFormed",
    "RequestItemTooLong",
    "TargetURIIsTooLong",
    "UnsupportedMediaType",
    "ByteSizeTooBig",
    "RequestFailRetryAfterSomeTime",
    "PutOrAddCommandFailedBecauseTargetAlreadyExists",
    "ConflictDetectedResolvedServerCommandWinning",
    "NoMoreStorageSpaceForRemainingSynchronizationData",
    "SpecifiedSearchGrammarWasNotKnown",
    "CGIScriptingInLocURIWasIncorrectlyFormed",
    "SoftDeletedItemAlreadyHardDeleted",
    "ChunkedObjectReceivedByIncorrectSizeDeclared",
    "InvalidAdequateAccessControlPermissions",
    "PartialItemNotAccepted",
    "ParentCanNotBeDeletedSinceItContainsChildren",
    "MoveFailed",
    "CommandNotSupported",
    "GatewayOrProxyError",
    "TemporaryOverloadingOrMaintenanceError",
    "GatewayOrProxyTimeout",
    "InvalidSyncMLDTDVersion",
    "ApplicationErrorWhileProcessingTheRequest",
    "ErrorCausedAllSyncMKCommandsFail",
    "ErrorARefreshSynchronizationIsNeeded",
    "ReservedForFutureUse",
    "ErrorInRecipientDataStore",
    "SevereErrorInServer",
    "ApplicationErrorDuringSynchronization",
    "SyncMLSynchronizationVersionNotSupported",
    "SyncMlCommandCanceled",
    "AtomicRollbackFailed",
    "AtomicResponseTooLarge",
    "MalformedSyntax",
)
WINDOWS_STATUS_SET = frozenset(WINDOWS_STATUSES)

STATUS_CODES: dict[str, int] = {
    "Acknowledged": 200,
    "OperationCanceled": 214,
    "CommandNotExecutedUserCanceled": 215,
    "CommandFormatError": 400,
    "CommandNotFound": 404,
    "NotSupported": 406,
    "RequestFailRetryAfterSomeTime": 417,
    "FailedByRecipientUnderstoodTheCommand": 500,
}
# Statuses that end with the action canceled (canceledAt is set).
CANCELED_STATUSES = frozenset({"OperationCanceled", "CommandNotExecutedUserCanceled"})
