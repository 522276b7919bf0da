"""Models of the compensation app, one module per subdomain: nodes,
policy, incidents, disconnects, the ledger (with claims, coupons and staff
adjustments), the embedded heartbeat store and monitoring alerts."""

from .alerts import AlertLink
from .disconnects import Disconnect, DisconnectStatus, Outcome
from .heartbeats import NodeState, PendingGap, SessionState
from .incidents import (
    DECLARED_KINDS,
    Incident,
    IncidentKind,
    IncidentMember,
    IncidentScope,
    IncidentStatus,
    IncidentUpdate,
    PayoutState,
    UpdateStatus,
)
from .ledger import (
    GENESIS_HASH,
    AdjustmentKind,
    AdjustmentStatus,
    AppendOnlyQuerySet,
    Claim,
    Coupon,
    CoveredSpan,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    MembershipAdjustment,
    SourceKind,
)
from .ledger_log import LedgerLogCheckpoint, LedgerLogCosignature, LedgerLogHash, LedgerLogHead
from .memberships import (
    CardKey,
    CardKeyBatch,
    EventKind,
    EventStatus,
    MembershipEvent,
    Platform,
)
from .nodes import Node
from .policy import Policy
from .usage import HealthState, NodeHealth, UsageProfile

__all__ = [
    "AdjustmentKind",
    "AdjustmentStatus",
    "AlertLink",
    "AppendOnlyQuerySet",
    "CardKey",
    "CardKeyBatch",
    "EventKind",
    "EventStatus",
    "MembershipEvent",
    "Platform",
    "Claim",
    "Coupon",
    "CoveredSpan",
    "Disconnect",
    "DisconnectStatus",
    "GENESIS_HASH",
    "HealthState",
    "Incident",
    "IncidentKind",
    "IncidentMember",
    "IncidentScope",
    "IncidentStatus",
    "IncidentUpdate",
    "DECLARED_KINDS",
    "LedgerCheckpoint",
    "LedgerLogCheckpoint",
    "LedgerLogCosignature",
    "LedgerLogHash",
    "LedgerLogHead",
    "LedgerEntry",
    "LedgerHead",
    "LedgerKind",
    "MembershipAdjustment",
    "Node",
    "NodeHealth",
    "NodeState",
    "Outcome",
    "PayoutState",
    "PendingGap",
    "Policy",
    "UpdateStatus",
    "SessionState",
    "SourceKind",
    "UsageProfile",
]
