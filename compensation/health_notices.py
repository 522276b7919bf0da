"""What the node health model tells operators and members (rendered in each
reader's own language by the notification seam)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.models import NotificationKind
from members.services.notify import Message

from .models import Node, NodeHealth

_SIGNALS = {
    "drop": gettext_lazy("disconnects"),
    "silent": gettext_lazy("silent sessions"),
    "late": gettext_lazy("late heartbeats"),
    "lag": gettext_lazy("delayed heartbeat delivery"),
}


def operator_alert(node: Node, health: NodeHealth, z: dict[str, float], *, user_id: int) -> Message:
    worst = sorted((k for k, v in z.items() if v >= 1), key=lambda k: -z[k])

    def render():
        separator = "、" if (translation.get_language() or "").startswith("zh") else ", "
        signals = separator.join(str(_SIGNALS[k]) for k in worst) or _("several signals")
        return (
            _("Node %(node)s: %(state)s (score %(score)s)")
            % {"node": node.name, "state": health.get_state_display(), "score": health.score},
            _(
                "The health model sees %(node)s above its usual level for this hour of the week "
                "in: %(signals)s. Members on it are being advised to switch nodes. No incident "
                "has been opened and no time is credited by this alert."
            )
            % {"node": node.name, "signals": signals},
            reverse("admin:compensation_node_changelist"),
        )

    return Message(
        kind=NotificationKind.NODE_HEALTH_ALERT,
        dedupe_key=f"node-health:{node.pk}:{health.episode}:{user_id}",
        user_id=user_id,
        render=render,
    )


def member_advice(
    node: Node, health: NodeHealth, alternative: Node | None, *, member_id: int
) -> Message:
    def render():
        if alternative is not None:
            body = _(
                "The node %(node)s you are connected to is running with degraded performance. "
                "To avoid disconnects, we recommend switching to %(other)s, which is healthy "
                "now. Any disconnect is still detected and compensated automatically."
            ) % {"node": node.name, "other": alternative.name}
        else:
            body = _(
                "The node %(node)s you are connected to is running with degraded performance. "
                "No other node is healthier right now; we are on it. Any disconnect is still "
                "detected and compensated automatically."
            ) % {"node": node.name}
        return (
            _("Your node %(node)s is degraded") % {"node": node.name},
            body,
            reverse("compensation:status"),
        )

    return Message(
        kind=NotificationKind.NODE_DEGRADED,
        # Once per member per degradation episode of this node.
        dedupe_key=f"node-degraded:{node.pk}:{health.episode}:{member_id}",
        member_id=member_id,
        render=render,
    )
