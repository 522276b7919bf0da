"""The appeal workflow. Member pages, the API and Django admin all call these.

States: submitted -> in review -> (info requested <-> in review) ->
approved / partly approved / rejected / withdrawn; rejected, partly approved
or overdue appeals can be taken to mediation. Every transition locks the
appeal row, checks the state it starts from, and writes an AppealEvent (the
audit trail and the member's timeline) in the same transaction.
"""

from .checks import AppealCheck, appeal_check, open_appeal_overlapping
from .common import CLOCK_SKEW, MAX_CLAIM_SPAN, AppealError, appeal_deadline
from .filing import appeal_file, appeal_submit
from .triage import Suggestion, Triage, appeal_credit_bound, appeal_suggestion, appeal_triage
from .workflow import (
    appeal_approve,
    appeal_assign,
    appeal_can_escalate,
    appeal_escalate,
    appeal_member_reply,
    appeal_reject,
    appeal_reply,
    appeal_request_info,
    appeal_staff_message,
    appeal_withdraw,
)

__all__ = [
    "CLOCK_SKEW",
    "MAX_CLAIM_SPAN",
    "AppealCheck",
    "AppealError",
    "Suggestion",
    "Triage",
    "appeal_approve",
    "appeal_assign",
    "appeal_can_escalate",
    "appeal_check",
    "appeal_credit_bound",
    "appeal_deadline",
    "appeal_escalate",
    "appeal_file",
    "appeal_member_reply",
    "appeal_reject",
    "appeal_reply",
    "appeal_request_info",
    "appeal_staff_message",
    "appeal_submit",
    "appeal_suggestion",
    "appeal_triage",
    "open_appeal_overlapping",
    "appeal_withdraw",
]
