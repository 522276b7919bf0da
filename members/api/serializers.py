from rest_framework import serializers

from ..models import MemberProfile


class MeSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    membership_active = serializers.SerializerMethodField()
    remaining_seconds = serializers.SerializerMethodField()

    class Meta:
        model = MemberProfile
        fields = [
            "member_no",
            "email",
            "tier",
            "status",
            "expires_at",
            "membership_active",
            "remaining_seconds",
            "language",
            "timezone",
        ]

    def get_membership_active(self, obj: MemberProfile) -> bool:
        return obj.membership_is_active(now=self.context["now"])

    def get_remaining_seconds(self, obj: MemberProfile) -> int:
        return int(obj.remaining(now=self.context["now"]).total_seconds())
